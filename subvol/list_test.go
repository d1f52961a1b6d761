package subvol_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/backend"
	"github.com/subvolkit/subvolkit/backend/memory"
	"github.com/subvolkit/subvolkit/quota"
	"github.com/subvolkit/subvolkit/subvol"
)

// noBulkUsage is the memory backend with a List that never fills usage,
// like a backend without a bulk path.
type noBulkUsage struct{ *memory.Backend }

func (b noBulkUsage) List(ctx context.Context, opts *backend.ListOptions) (*backend.ListPage, error) {
	page, err := b.Backend.List(ctx, opts)
	if page != nil {
		for _, sv := range page.Subvols {
			sv.Usage = nil
		}
	}
	return page, err
}

func TestListPage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		b    backend.Backend
	}{{"bulk", memory.New(nil)}, {"one-by-one", noBulkUsage{memory.New(nil)}}} {
		t.Run(tc.name, func(t *testing.T) {
			p := subvol.NewPool(tc.b, nil)
			defer p.Close()
			for _, n := range []string{"d", "b", "a", "e", "c"} {
				_, err := p.Allocate(ctx, n, quota.MiB, nil)
				require.NoError(t, err)
			}
			var got []string
			opts := &subvol.ListOptions{MaxResults: 2, WithUsage: true}
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10)
				page, err := p.ListPage(ctx, opts)
				require.NoError(t, err)
				assert.LessOrEqual(t, len(page.Subvols), 2)
				for _, sv := range page.Subvols {
					got = append(got, sv.Name)
					if assert.NotNil(t, sv.Usage, sv.Name) {
						assert.Equal(t, quota.MiB, sv.Usage.Limit)
					}
				}
				if pages == 0 {
					require.NoError(t, p.Delete(ctx, "c", nil)) // not seen yet: skipped, nothing else
				}
				if page.NextPageToken == "" {
					break
				}
				opts.PageToken = page.NextPageToken
			}
			assert.Equal(t, []string{"a", "b", "d", "e"}, got)

			page, err := p.ListPage(ctx, &subvol.ListOptions{NamesOnly: true})
			require.NoError(t, err)
			require.Len(t, page.Subvols, 4)
			assert.Equal(t, "/a", page.Subvols[0].Path)
			assert.Nil(t, page.Subvols[0].Usage, "usage only when asked for")

			_, err = p.ListPage(ctx, &subvol.ListOptions{MaxResults: -1})
			assert.ErrorIs(t, err, subvolkit.ErrInvalidArgument)
		})
	}
}
