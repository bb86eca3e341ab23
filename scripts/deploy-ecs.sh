#!/usr/bin/env bash
# Build the query service image, push it to ECR, register the task definition from
# infra/ecs/task-definition.json with that image, roll the ECS service and wait until it is stable.
#
# Required environment:
#   AWS_REGION       region of the stack, e.g. ap-southeast-1
#   AWS_ACCOUNT_ID   12-digit account id owning the ECR repository and the roles
#   ECR_REPOSITORY   ECR repository name, e.g. query-service
#   IMAGE_TAG        tag to build and push, e.g. the git commit
#   CLUSTER_NAME     ECS cluster (terraform output ecs_cluster_name)
#   SERVICE_NAME     ECS service (terraform output ecs_service_name)
# Optional:
#   DOCKERFILE       default: Dockerfile (in BUILD_CONTEXT)
#   BUILD_CONTEXT    default: the repository root
#   TASK_DEFINITION_FILE  default: infra/ecs/task-definition.json
#   WAIT_FOR_STABILITY    default: true (set false to return after update-service)
#   SKIP_IMAGE_BUILD      default: false; true registers IMAGE (default query-service:local) as is,
#                         without docker or ECR: a local stack (AWS_ENDPOINT_URL=http://127.0.0.1:4566)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

declare -A required=(
  [AWS_REGION]="the AWS region to deploy to, e.g. ap-southeast-1"
  [AWS_ACCOUNT_ID]="the 12-digit AWS account id that owns the ECR repository"
  [ECR_REPOSITORY]="the ECR repository name, e.g. query-service"
  [IMAGE_TAG]="the image tag to build and push, e.g. \$(git rev-parse --short HEAD)"
  [CLUSTER_NAME]="the ECS cluster name (terraform output ecs_cluster_name)"
  [SERVICE_NAME]="the ECS service name (terraform output ecs_service_name)"
)
missing=0
for name in AWS_REGION AWS_ACCOUNT_ID ECR_REPOSITORY IMAGE_TAG CLUSTER_NAME SERVICE_NAME; do
  if [[ -z "${!name:-}" ]]; then
    echo "deploy-ecs.sh: error: ${name} is not set: ${required[$name]}" >&2
    missing=$((missing + 1))
  fi
done
if (( missing > 0 )); then
  echo "deploy-ecs.sh: ${missing} required variable(s) missing; nothing was built or deployed." >&2
  exit 2
fi
if [[ ! "${AWS_ACCOUNT_ID}" =~ ^[0-9]{12}$ ]]; then
  echo "deploy-ecs.sh: error: AWS_ACCOUNT_ID must be 12 digits, got '${AWS_ACCOUNT_ID}'" >&2
  exit 2
fi

DOCKERFILE="${DOCKERFILE:-Dockerfile}"
BUILD_CONTEXT="${BUILD_CONTEXT:-${repo_root}}"
TASK_DEFINITION_FILE="${TASK_DEFINITION_FILE:-${repo_root}/infra/ecs/task-definition.json}"
WAIT_FOR_STABILITY="${WAIT_FOR_STABILITY:-true}"
SKIP_IMAGE_BUILD="${SKIP_IMAGE_BUILD:-false}"
tools=(aws python3)
if [[ "${SKIP_IMAGE_BUILD}" != "true" ]]; then
  tools+=(docker)
fi

for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    echo "deploy-ecs.sh: error: '${tool}' is not on PATH; install it first." >&2
    exit 2
  fi
done
if [[ ! -f "${TASK_DEFINITION_FILE}" ]]; then
  echo "deploy-ecs.sh: error: task definition ${TASK_DEFINITION_FILE} not found" >&2
  exit 2
fi

registry="${AWS_ACCOUNT_ID}.dkr.ecr.${AWS_REGION}.amazonaws.com"
if [[ "${SKIP_IMAGE_BUILD}" == "true" ]]; then
  image="${IMAGE:-query-service:local}"
  echo "==> [1-3/5] SKIP_IMAGE_BUILD=true: registering ${image} as is (no docker, no ECR)"
else
  image="${registry}/${ECR_REPOSITORY}:${IMAGE_TAG}"

  echo "==> [1/5] logging in to ${registry}"
  aws ecr get-login-password --region "${AWS_REGION}" \
    | docker login --username AWS --password-stdin "${registry}"

  echo "==> [2/5] building ${image}"
  (cd "${BUILD_CONTEXT}" && docker build --file "${DOCKERFILE}" --tag "${image}" .)

  echo "==> [3/5] pushing ${image}"
  docker push "${image}"
fi

echo "==> [4/5] registering task definition from ${TASK_DEFINITION_FILE}"
rendered="$(mktemp)"
trap 'rm -f "${rendered}"' EXIT
IMAGE="${image}" python3 - "${TASK_DEFINITION_FILE}" "${rendered}" <<'PY'
import json, os, sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as handle:
    text = handle.read().replace("${AWS_ACCOUNT_ID}", os.environ["AWS_ACCOUNT_ID"])
document = json.loads(text)
for container in document["containerDefinitions"]:
    container["image"] = os.environ["IMAGE"]
    options = container.get("logConfiguration", {}).get("options", {})
    if "awslogs-region" in options:
        options["awslogs-region"] = os.environ["AWS_REGION"]
    for variable in container.get("environment", []):
        if variable["name"] == "AWS_REGION":
            variable["value"] = os.environ["AWS_REGION"]
with open(target, "w", encoding="utf-8") as handle:
    json.dump(document, handle)
PY
task_definition_arn="$(aws ecs register-task-definition \
  --region "${AWS_REGION}" \
  --cli-input-json "file://${rendered}" \
  --query 'taskDefinition.taskDefinitionArn' --output text)"
echo "    registered ${task_definition_arn}"

echo "==> [5/5] updating service ${SERVICE_NAME} in ${CLUSTER_NAME}"
aws ecs update-service \
  --region "${AWS_REGION}" \
  --cluster "${CLUSTER_NAME}" \
  --service "${SERVICE_NAME}" \
  --task-definition "${task_definition_arn}" \
  --output text --query 'service.serviceArn' >/dev/null

if [[ "${WAIT_FOR_STABILITY}" == "true" ]]; then
  echo "    waiting for the service to become stable (this can take a few minutes)..."
  aws ecs wait services-stable \
    --region "${AWS_REGION}" --cluster "${CLUSTER_NAME}" --services "${SERVICE_NAME}"
fi
echo "==> deployed ${image} as ${task_definition_arn}"
