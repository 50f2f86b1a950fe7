"""Stack config in, one HTCondorPool, stack outputs out."""

import pulumi

from pool import HTCondorPool
from pool.stack_config import load_pool_args

name, args = load_pool_args()
pool = HTCondorPool(name, args)

pulumi.export("central_manager_address", pool.central_manager_address)
pulumi.export("namespace", pool.namespace)
pulumi.export("workers", pool.workers)
pulumi.export("pool_password", pool.pool_password)
pulumi.export("submit_token", pool.submit_token)
pulumi.export("worker_token", pool.worker_token)
pulumi.export("service_name", pool.service_name)
pulumi.export("central_manager_deployment_name", pool.central_manager_deployment_name)
pulumi.export("schedd_deployment_name", pool.schedd_deployment_name)
pulumi.export("worker_deployment_name", pool.worker_deployment_name)
pulumi.export("worker_pool_deployment_names", pool.worker_pool_deployment_names)
pulumi.export("metrics_address", pool.metrics_address)
