// Package quota holds the sizes, limits and usage figures of subvolumes: a
// subvolume's size is the hard quota limit of its directory (or, for
// backends that give each subvolume a whole Gluster volume, the volume's
// size), always counted in bytes as an int64.
//
// Two parsers, one per convention, never guessing between them:
// ParseQuantity reads Kubernetes quantities exactly as resource.Quantity
// does ("10Gi", "1G" = 10^9, "1.5Gi", "1e9"; "1g" and "1GB" are invalid), and
// ParseGlusterSize reads the gluster CLI's sizes ("10GB", "10.0MB",
// "512Bytes", any case). FormatQuantity and FormatGlusterSize write a size
// back exactly, each for its own parser; HumanSize writes it for people.
// RoundUp rounds a size up to a multiple of a unit. Usage reports how much of
// a limit is used.
//
// # Gluster units are 1024-based
//
// Gluster's KB, MB, GB, TB and PB are powers of 1024, whatever their names
// suggest: "gluster volume quota VOL limit-usage /dir 10MB" sets a hard limit
// of 10485760 bytes, and "quota list" prints a 10 GiB limit as "10.0GB".
// Kubernetes, on the other hand, reads "10G" as 10^9 bytes and "10Gi" as
// 10 GiB. So "10GB" (Gluster) and "10G" (Kubernetes) differ by 7%:
// ParseGlusterSize("10GB") is 10737418240 and ParseQuantity("10G") is
// 10000000000. A size read from a claim goes through ParseQuantity, one
// written to or read from Gluster through FormatGlusterSize and
// ParseGlusterSize, so it never changes on its way.
//
// Kubernetes' lower-case "m" is milli: "500m" is half a byte, not 500
// megabytes, and ParseQuantity rounds it up to 1 byte as Kubernetes does.
package quota
