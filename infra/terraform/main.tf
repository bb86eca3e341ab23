# Query Service V3: tables, Lambdas, stream mapping, queue, logs, ECS service, ALB, autoscaling.
# The single source of truth: the local harness provisions its stack from these files, and the
# ECS task and service definitions are read from ../ecs/*.json rather than repeated here.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
  }
}

provider "aws" {
  region = var.aws_region
  default_tags {
    tags = {
      Project = "query-service-v3"
    }
  }
}

variable "aws_region" {
  description = "Region of the whole stack."
  type        = string
  default     = "ap-southeast-1"
}

variable "vpc_id" {
  description = "VPC holding the load balancers, the ECS tasks and the execute-api VPC endpoint."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more AZs) with a route to AWS APIs (NAT or VPC endpoints)."
  type        = list(string)
}

variable "container_image" {
  description = "Image of the query service (scripts/deploy-ecs.sh pushes it to ECR)."
  type        = string
  default     = "query-service:local"
}

variable "ecr_repository_name" {
  description = "ECR repository the task execution role may pull from."
  type        = string
  default     = "query-service"
}

variable "lambda_package_path" {
  description = "Zip of the lambdas package with its dependencies (pip install -t build/ . && zip)."
  type        = string
  default     = "../../build/lambdas.zip"
}

variable "service_min_count" {
  description = "Fewest query-service tasks autoscaling keeps."
  type        = number
  default     = 2
}

variable "service_max_count" {
  description = "Most query-service tasks autoscaling starts."
  type        = number
  default     = 6
}

variable "service_cpu_target" {
  description = "Average CPU utilisation (percent) the target-tracking policy holds."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 30
}

data "aws_caller_identity" "current" {}

data "aws_vpc" "selected" {
  id = var.vpc_id
}

locals {
  task_definition    = jsondecode(file("${path.module}/../ecs/task-definition.json"))
  service_definition = jsondecode(file("${path.module}/../ecs/service-definition.json"))
  container          = local.task_definition.containerDefinitions[0]
  container_port     = local.container.portMappings[0].containerPort
}

# ---------------------------------------------------------------- DynamoDB

resource "aws_dynamodb_table" "command_records" {
  name             = "command-records"
  billing_mode     = "PAY_PER_REQUEST"
  hash_key         = "transaction_id"
  range_key        = "created_at"
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "transaction_id"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "N"
  }

  point_in_time_recovery {
    enabled = true
  }
}

resource "aws_dynamodb_table" "notification_records" {
  name         = "notification-records"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "user_id"
  range_key    = "created_at"

  attribute {
    name = "user_id"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "N"
  }

  attribute {
    name = "marketing_id"
    type = "S"
  }

  attribute {
    name = "transaction_id"
    type = "S"
  }

  attribute {
    name = "status"
    type = "S"
  }

  global_secondary_index {
    name            = "marketing_id-index"
    hash_key        = "marketing_id"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "transaction_id-status-index"
    hash_key        = "transaction_id"
    range_key       = "status"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }
}

# ---------------------------------------------------------------- queue and logs

resource "aws_sqs_queue" "stream_processor_dlq" {
  name                      = "stream-processor-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_cloudwatch_log_group" "query_lambda" {
  name              = "/aws/lambda/query-lambda"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "stream_processor" {
  name              = "/aws/lambda/stream-processor"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "query_service" {
  name              = local.container.logConfiguration.options["awslogs-group"]
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------- Lambda functions

resource "aws_lambda_function" "query" {
  function_name    = "query-lambda"
  description      = "Query Service V3: user, marketing and fail queries of notification-records"
  role             = aws_iam_role.query_lambda.arn
  handler          = "lambdas.query.handler.lambda_handler"
  runtime          = "python3.12"
  filename         = var.lambda_package_path
  source_code_hash = filebase64sha256(var.lambda_package_path)
  timeout          = 10
  memory_size      = 256

  environment {
    variables = {
      NOTIFICATION_TABLE_NAME = aws_dynamodb_table.notification_records.name
      POWERTOOLS_LOG_LEVEL    = "INFO"
    }
  }

  depends_on = [aws_cloudwatch_log_group.query_lambda]
}

resource "aws_lambda_function" "stream_processor" {
  function_name    = "stream-processor"
  description      = "Query Service V3: command-records stream to notification-records"
  role             = aws_iam_role.stream_processor.arn
  handler          = "lambdas.stream_processor.handler.lambda_handler"
  runtime          = "python3.12"
  filename         = var.lambda_package_path
  source_code_hash = filebase64sha256(var.lambda_package_path)
  timeout          = 60
  memory_size      = 256

  environment {
    variables = {
      NOTIFICATION_TABLE_NAME = aws_dynamodb_table.notification_records.name
      POWERTOOLS_LOG_LEVEL    = "INFO"
    }
  }

  depends_on = [aws_cloudwatch_log_group.stream_processor]
}

resource "aws_lambda_event_source_mapping" "command_records_stream" {
  function_name                      = aws_lambda_function.stream_processor.arn
  event_source_arn                   = aws_dynamodb_table.command_records.stream_arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  parallelization_factor             = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 5
  maximum_record_age_in_seconds      = 3600
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_processor_dlq.arn
    }
  }
}

# ---------------------------------------------------------------- load balancer (internal ALB)

resource "aws_security_group" "alb" {
  name        = "query-service-alb"
  description = "Internal ALB of the query service: HTTP from inside the VPC (the NLB)"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTP from the VPC"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.selected.cidr_block]
  }

  egress {
    description = "To the service tasks"
    from_port   = local.container_port
    to_port     = local.container_port
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.selected.cidr_block]
  }
}

resource "aws_security_group" "service" {
  name        = "query-service-tasks"
  description = "Query service tasks: traffic from the ALB only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Service port from the ALB"
    from_port       = local.container_port
    to_port         = local.container_port
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }

  egress {
    description = "HTTPS to AWS APIs (Lambda, ECR, CloudWatch Logs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "alb" {
  name               = "query-service-alb"
  internal           = true
  load_balancer_type = "application"
  subnets            = var.private_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "query_service" {
  name                 = "query-service-tg"
  port                 = local.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = "/health"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "alb_http" {
  load_balancer_arn = aws_lb.alb.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.query_service.arn
  }
}

# ---------------------------------------------------------------- ECS

resource "aws_ecs_cluster" "main" {
  name = local.service_definition.cluster

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "query_service" {
  family                   = local.task_definition.family
  cpu                      = local.task_definition.cpu
  memory                   = local.task_definition.memory
  network_mode             = local.task_definition.networkMode
  requires_compatibilities = local.task_definition.requiresCompatibilities
  execution_role_arn       = aws_iam_role.ecs_task_execution.arn
  task_role_arn            = aws_iam_role.ecs_task.arn
  container_definitions    = jsonencode([for c in local.task_definition.containerDefinitions : merge(c, { image = var.container_image })])

  runtime_platform {
    operating_system_family = local.task_definition.runtimePlatform.operatingSystemFamily
    cpu_architecture        = local.task_definition.runtimePlatform.cpuArchitecture
  }
}

resource "aws_service_discovery_private_dns_namespace" "internal" {
  name        = "query-service.internal"
  description = "Service discovery for the query service tasks"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "query_service" {
  name = local.service_definition.serviceName

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.internal.id
    routing_policy = "MULTIVALUE"

    dns_records {
      ttl  = 10
      type = "A"
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_ecs_service" "query_service" {
  name                               = local.service_definition.serviceName
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.query_service.arn
  desired_count                      = local.service_definition.desiredCount
  launch_type                        = local.service_definition.launchType
  platform_version                   = local.service_definition.platformVersion
  deployment_minimum_healthy_percent = local.service_definition.deploymentConfiguration.minimumHealthyPercent
  deployment_maximum_percent         = local.service_definition.deploymentConfiguration.maximumPercent
  health_check_grace_period_seconds  = local.service_definition.healthCheckGracePeriodSeconds
  enable_ecs_managed_tags            = local.service_definition.enableECSManagedTags
  propagate_tags                     = local.service_definition.propagateTags

  deployment_controller {
    type = local.service_definition.deploymentController.type
  }

  deployment_circuit_breaker {
    enable   = local.service_definition.deploymentConfiguration.deploymentCircuitBreaker.enable
    rollback = local.service_definition.deploymentConfiguration.deploymentCircuitBreaker.rollback
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.query_service.arn
    container_name   = local.container.name
    container_port   = local.container_port
  }

  service_registries {
    registry_arn = aws_service_discovery_service.query_service.arn
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.alb_http]
}

resource "aws_appautoscaling_target" "query_service" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.query_service.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.service_min_count
  max_capacity       = var.service_max_count
}

resource "aws_appautoscaling_policy" "query_service_cpu" {
  name               = "query-service-cpu-target-tracking"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.query_service.service_namespace
  resource_id        = aws_appautoscaling_target.query_service.resource_id
  scalable_dimension = aws_appautoscaling_target.query_service.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.service_cpu_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
