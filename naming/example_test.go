package naming_test

import (
	"errors"
	"fmt"

	"github.com/subvolkit/subvolkit"
	"github.com/subvolkit/subvolkit/naming"
)

func ExampleEndpointName() {
	// The UID of the claim, as "kubectl get pvc claim1 -o jsonpath={.metadata.uid}" prints it.
	uid := "a71fa382-f77d-11e8-b229-005056a5c1c4"

	name, _ := naming.EndpointName("", uid)
	fmt.Println(name, len(name))

	_, err := naming.EndpointName("a-prefix-that-is-much-too-long", uid)
	fmt.Println(errors.Is(err, subvolkit.ErrInvalidArgument))
	// Output:
	// glusterfs-dynamic-a71fa382-f77d-11e8-b229-005056a5c1c4 54
	// true
}

func ExampleFromUID() {
	name, _ := naming.FromUID("", "A71FA382-F77D-11E8-B229-005056A5C1C4")
	fmt.Println(name)
	// Output: pvc-a71fa382-f77d-11e8-b229-005056a5c1c4
}

func ExampleVolumeName() {
	uid := "a71fa382-f77d-11e8-b229-005056a5c1c4"
	for _, pvc := range []string{"claim1", "data.v1"} {
		name, _ := naming.VolumeName("vol", "app-storage", pvc, uid)
		fmt.Println(name)
	}
	// Output:
	// vol_app-storage_claim1_a71fa382
	// vol_app-storage_data-v1-6e554337cb_a71fa382
}

func ExampleForRequest() {
	for _, req := range []string{
		"pvc-a71fa382-f77d-11e8-b229-005056a5c1c4", // a CSI CreateVolume name: kept
		"My Volume",        // rewritten, with a hash of the original
		"../../etc/passwd", // rejected
	} {
		name, err := naming.ForRequest(req)
		fmt.Printf("%q %v\n", name, err)
	}
	// Output:
	// "pvc-a71fa382-f77d-11e8-b229-005056a5c1c4" <nil>
	// "my-volume-f436f1b4e0" <nil>
	// "" subvolkit: name for request: invalid argument: request name "../../etc/passwd" contains '/'
}

func ExampleValidateSubvolName() {
	for _, name := range []string{"pvc-1", "..", ".hidden", "a/b"} {
		fmt.Println(naming.ValidateSubvolName(name))
	}
	// Output:
	// <nil>
	// subvolkit: validate name: invalid argument: subvolume name ".." is not a directory name
	// subvolkit: validate name: invalid argument: subvolume name ".hidden" must start with a letter or a digit
	// subvolkit: validate name: invalid argument: subvolume name "a/b" contains '/'
}

func ExampleTruncate() {
	fmt.Println(naming.Truncate("short-name", 20))
	fmt.Println(naming.Truncate("a-name-that-is-too-long-for-the-limit", 20))
	// Output:
	// short-name
	// a-name-th-290911a5c6
}
