"""kubeadm-cluster: an HA Kubernetes cluster built with kubeadm on machines reached over SSH."""

from components.program import main

main()
