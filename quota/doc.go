// Package quota holds the sizes, limits and usage figures of subvolumes: a
// subvolume's size is the hard quota limit of its directory (or, for
// backends that give each subvolume a whole Gluster volume, the volume's
// size), always counted in bytes as an int64.
//
// ParseSize reads the sizes people and programs write, both Kubernetes
// quantities ("10Gi", "1G", "1.5Gi", "1e9") and Gluster units ("10GB",
// "512Bytes", "10.0MB"). FormatSize and GlusterLimit write a size back
// exactly, for Kubernetes and for "gluster volume quota VOL limit-usage";
// HumanSize writes it for people. RoundUp rounds a size up to a multiple of
// a unit. Usage reports how much of a limit is used.
//
// # Gluster units are 1024-based
//
// Gluster's KB, MB, GB, TB and PB are powers of 1024, whatever their names
// suggest: "gluster volume quota VOL limit-usage /dir 10MB" sets a hard limit
// of 10485760 bytes, and "quota list" prints a 10 GiB limit as "10.0GB".
// Kubernetes, on the other hand, reads "10G" as 10^9 bytes and "10Gi" as
// 10 GiB. So "10GB" and "10G" differ by 7%: ParseSize("10GB") is
// 10737418240 and ParseSize("10G") is 10000000000. ParseSize follows each
// convention for its own spelling (a unit that ends in "B" is 1024-based),
// and GlusterLimit only ever writes Gluster units, so a size never changes
// on its way from a claim to a quota limit.
//
// Kubernetes' lower-case "m" is milli: "500m" is half a byte, not 500
// megabytes, and ParseSize rounds it up to 1 byte as Kubernetes does.
package quota
