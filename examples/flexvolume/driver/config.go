package driver

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvDriver          = "SUBVOLKIT_FLEX_DRIVER"
	EnvLog             = "SUBVOLKIT_FLEX_LOG"
	EnvState           = "SUBVOLKIT_FLEX_STATE"
	EnvGlusterLogDir   = "SUBVOLKIT_FLEX_GLUSTER_LOG_DIR"
	EnvGlusterLogLevel = "SUBVOLKIT_FLEX_GLUSTER_LOG_LEVEL"
	EnvTimeout         = "SUBVOLKIT_FLEX_TIMEOUT"
	EnvProbeTimeout    = "SUBVOLKIT_FLEX_PROBE_TIMEOUT"
	EnvFSGroup         = "SUBVOLKIT_FLEX_FSGROUP"
	EnvLegacyMountDir  = "SUBVOLKIT_FLEX_LEGACY_MNT"
	EnvLegacyLockDir   = "SUBVOLKIT_FLEX_LEGACY_LOCKS"
)

// Defaults.
const (
	DefaultDriver = "rht/glfs-subvol"
	// DefaultLogFile is glfs-subvol's log, where its log shipping (a
	// tail of /var/log/glusterfs/*.log) looks.
	DefaultLogFile = "/var/log/glusterfs/glfs-subdir.log"
	// DefaultGlusterLogDir is where mount.glusterfs writes client logs,
	// and glfs-subvol's too.
	DefaultGlusterLogDir = "/var/log/glusterfs"
	// LegacyLockDir holds glfs-subvol's lock files, one per shared mount.
	LegacyLockDir  = "/var/lock/glfs-subvol"
	DefaultTimeout = 2 * time.Minute
	// PluginsDir is where the default state directory goes:
	// PluginsDir/<vendor>~<name>.
	PluginsDir = "/var/lib/kubelet/plugins"
)

// Config configures a Driver. The zero value is not valid: use
// ConfigFromEnv, or fill every field.
type Config struct {
	// Name is the driver name, "vendor/name"; kubelet finds the driver
	// in <exec dir>/<vendor>~<name>/<name>.
	Name string
	// LogFile receives the invocation log; "" turns it off.
	LogFile string
	// StateDir holds the shared mounts and the lock files. Every
	// invocation on a node must use the same one.
	StateDir string
	// GlusterLogDir receives the glusterfs client logs, one per shared
	// mount.
	GlusterLogDir string
	// GlusterLogLevel is the glusterfs client log level; "" means the
	// mount package's default (INFO).
	GlusterLogLevel string
	// Timeout bounds one invocation.
	Timeout time.Duration
	// ProbeTimeout bounds the TCP probe of each server before a mount;
	// 0 means the mount package's default, negative turns probing off.
	ProbeTimeout time.Duration
	// LegacyMountDir is where glfs-subvol keeps its shared mounts
	// (<driver dir>/.mnt/<server>-<volume>); the driver adopts them, so a
	// node can swap drivers with pods running. "" means none.
	LegacyMountDir string
	// LegacyLockDir holds glfs-subvol's lock files; "" means
	// LegacyLockDir (/var/lock/glfs-subvol).
	LegacyLockDir string
	// FSGroup is reported to kubelet as the fsGroup capability: true lets
	// kubelet change the group of every file on each mount (slow on a
	// big directory), false (glfs-subvol's choice) leaves ownership alone.
	FSGroup bool
}

// ConfigFromEnv builds a Config from the SUBVOLKIT_FLEX_* variables (see
// the package documentation), getenv being os.Getenv or a stand-in.
func ConfigFromEnv(getenv func(string) string) (*Config, error) {
	c := &Config{
		Name:            DefaultDriver,
		LogFile:         DefaultLogFile,
		GlusterLogDir:   DefaultGlusterLogDir,
		GlusterLogLevel: strings.TrimSpace(getenv(EnvGlusterLogLevel)),
		Timeout:         DefaultTimeout,
	}
	if v := strings.TrimSpace(getenv(EnvDriver)); v != "" {
		c.Name = v
	}
	vendor, name, ok := strings.Cut(c.Name, "/")
	if !ok || !validName(vendor) || !validName(name) {
		return nil, fmt.Errorf("%s=%q: want vendor/name, each of letters, digits, '.', '_' and '-'", EnvDriver, c.Name)
	}
	c.StateDir = filepath.Join(PluginsDir, vendor+"~"+name)

	var err error
	if c.LogFile, err = LogFileFromEnv(getenv); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		env string
		dst *string
	}{{EnvState, &c.StateDir}, {EnvGlusterLogDir, &c.GlusterLogDir}, {EnvLegacyMountDir, &c.LegacyMountDir}, {EnvLegacyLockDir, &c.LegacyLockDir}} {
		if v := strings.TrimSpace(getenv(d.env)); v != "" {
			if !filepath.IsAbs(v) {
				return nil, fmt.Errorf("%s=%q: want an absolute path", d.env, v)
			}
			*d.dst = filepath.Clean(v)
		}
	}
	if v := strings.TrimSpace(getenv(EnvTimeout)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 90s", EnvTimeout, v)
		}
		c.Timeout = d
	}
	switch v := strings.TrimSpace(getenv(EnvProbeTimeout)); strings.ToLower(v) {
	case "":
	case "off", "0", "false", "no":
		c.ProbeTimeout = -1
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 1.5s, or \"off\"", EnvProbeTimeout, v)
		}
		c.ProbeTimeout = d
	}
	if v := strings.TrimSpace(getenv(EnvFSGroup)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want true or false", EnvFSGroup, v)
		}
		c.FSGroup = b
	}
	return c, nil
}

// LogFileFromEnv returns the log file that SUBVOLKIT_FLEX_LOG names:
// DefaultLogFile when it is unset, "" when it is "off".
func LogFileFromEnv(getenv func(string) string) (string, error) {
	switch v := strings.TrimSpace(getenv(EnvLog)); strings.ToLower(v) {
	case "":
		return DefaultLogFile, nil
	case "off", "none", "0", "false", "no":
		return "", nil
	default:
		if !filepath.IsAbs(v) {
			return "", fmt.Errorf("%s=%q: want an absolute path or \"off\"", EnvLog, v)
		}
		return filepath.Clean(v), nil
	}
}

// validName reports whether s is a valid vendor or driver name.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
