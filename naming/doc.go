// Package naming builds and checks the names subvolkit gives to subvolumes
// and to the Kubernetes objects that point at them. Every function is pure
// and deterministic: the same input gives the same name on every node and
// after every restart, which is what turns a retried create into a lookup.
//
// # Why names come from the claim's UID
//
// Early Gluster provisioners named the Endpoints and Service of a volume
// after the claim ("glusterfs-dynamic-<pvc name>"). That broke in two ways.
// Deleting a claim and creating one with the same name at once raced, and
// the cleanup of the old claim could take the new claim's Endpoints and
// Service with it (kubernetes/kubernetes #61823). And a claim name of 45 to 63 characters plus the prefix made a
// name the API server rejects. Kubernetes 1.13 switched to the claim's UID
// ("glusterfs-dynamic-<uid>", PR #56380); EndpointName builds that name and
// FromUID the matching subvolume name ("pvc-<uid>"). A UID never repeats, so
// a new claim never meets an old claim's leftovers.
//
// # The 63-character rule and the 26-character prefix budget
//
// Service and Endpoints names, namespaces and label values are DNS-1123
// labels: at most 63 characters (MaxDNSLabel) of lower-case letters, digits
// and '-'. A UID takes 36 characters and the separating '-' one more, which
// leaves 26 (MaxEndpointPrefix) for a prefix; the in-tree provisioner's
// customepnameprefix had the same limit. EndpointName and FromUID reject a
// longer prefix instead of returning a name Kubernetes would refuse.
//
// # Names that do not fit
//
// ForRequest accepts any request name (a CSI CreateVolume name, say) and
// returns a valid subvolume name. Names that are already valid and short
// pass unchanged; others are lower-cased, cleaned, cut and given a suffix of
// 10 hex digits of the SHA-256 of the original name, so that two names never
// collide after rewriting (within the 40 bits of the hash). VolumeName and
// Truncate use the same kind of suffix. Names that cannot be meant as names
// (empty, ".", "..", or containing '/' or NUL) are rejected with an error of
// kind subvolkit.InvalidArgument rather than rewritten.
//
// ValidateSubvolName is the check every backend relies on: a valid name is a
// single, non-hidden path element and cannot escape the directory it is
// created in.
package naming
