package memory

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyTree copies the content of the directory src into the existing
// directory dst: directories, regular files and symbolic links (not
// followed), with their permission bits. Anything else is an error. It
// checks ctx between entries.
func copyTree(ctx context.Context, src, dst string) error {
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			// Writable while we fill it; its mode is set at the end.
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{target, mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)})
		case mode.IsRegular():
			return copyFile(path, target, mode.Perm())
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return fmt.Errorf("%s: cannot copy a file of type %v", path, mode.Type())
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first, so that a read-only parent does not stop a child.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Chmod(perm)
}

// usage is what measure finds in a directory tree.
type usage struct {
	used, files, dirs int64
}

// measure walks dir: used is the sum of the apparent sizes of its regular
// files, files counts the entries that are not directories and dirs the
// directories below dir. It checks ctx between entries.
func measure(ctx context.Context, dir string) (usage, error) {
	var u usage
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case path == dir:
		case d.IsDir():
			u.dirs++
		default:
			u.files++
			if d.Type().IsRegular() {
				info, err := d.Info()
				if err != nil {
					return err
				}
				u.used += info.Size()
			}
		}
		return nil
	})
	return u, err
}
