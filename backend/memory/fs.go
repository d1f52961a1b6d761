package memory

import (
	"context"
	"io/fs"
	"path/filepath"
)

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
