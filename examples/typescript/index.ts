// An HTCondor pool from TypeScript: the htcondor package's Pool, whose SDK (sdks/htcondor)
// `pulumi package add ../../package` generates; the same inputs and outputs as examples/yaml.
import * as pulumi from "@pulumi/pulumi";
import * as htcondor from "@pulumi/htcondor";

const config = new pulumi.Config();
const pool = new htcondor.Pool("htcondor", {
    namespace: "htcondor-typescript",
    workers: config.getNumber("workers") ?? 1,
    resources: {
        centralManager: { cpu: "100m", memory: "256Mi", disk: "512Mi" },
        schedd: { cpu: "200m", memory: "512Mi", disk: "1Gi" },
        worker: { cpu: "500m", memory: "1Gi", disk: "1Gi" },
    },
    workerPools: { small: { workers: 1, cpu: "250m", memory: "512Mi" } },
});

export const central_manager_address = pool.centralManagerAddress;
export const namespace = pool.namespace;
export const workers = pool.workers;
export const worker_pool_deployment_names = pool.workerPoolDeploymentNames;
export const pool_password = pool.poolPassword;
