"""Deploys a small app onto the cluster of a kubeadm-cluster stack (see README.md)."""

import pulumi

from app import deploy

for key, value in deploy(pulumi.Config().require("clusterStack")).items():
    pulumi.export(key, value)
