module github.com/subvolkit/subvolkit/examples

go 1.26.0

require (
	github.com/form3tech-oss/jwt-go v3.2.5+incompatible
	github.com/heketi/heketi v10.3.0+incompatible
	github.com/stretchr/testify v1.12.1
	github.com/subvolkit/subvolkit v0.0.0
	k8s.io/klog/v2 v2.140.0
	k8s.io/mount-utils v0.37.2
)

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/go-logr/logr v1.4.3 // indirect
	github.com/go-ozzo/ozzo-validation v3.6.0+incompatible // indirect
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.1.1 // indirect
	github.com/moby/sys/mountinfo v0.7.2 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
	k8s.io/utils v0.0.0-20260626114624-be93311217bd // indirect
)

replace github.com/subvolkit/subvolkit => ../
