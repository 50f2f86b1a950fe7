"""The single-node cluster's names and addresses. Everything lives in the cluster's own
network namespace: the node's address on its own network card (node0), the pod bridge the CNI plugin
makes, and the Service range kube-proxy programs. Nothing of it is in the host's."""

NODE_NAME = "htcondor-pool-node"
NODE_IP = "10.250.0.2"  # on node0, the node's network card
NODE_PREFIX = 24
NODE_GATEWAY = "10.250.0.1"  # its default route (nothing answers there: no way out)
POD_CIDR = "10.244.0.0/24"  # one node, one /24 (host-local IPAM on the bridge cni0)
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
API_SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: first address of the range
CLUSTER_DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 6443
ETCD_CLIENT = "http://127.0.0.1:2379"
