# What a caller (or the harness's "aws" backend) needs to find the deployed stack.

output "command_table_name" {
  description = "Write-side table"
  value       = aws_dynamodb_table.command_records.name
}

output "command_table_stream_arn" {
  description = "Stream consumed by stream-processor"
  value       = aws_dynamodb_table.command_records.stream_arn
}

output "notification_table_name" {
  description = "Read-side table"
  value       = aws_dynamodb_table.notification_records.name
}

output "query_lambda_name" {
  description = "Function the service invokes (QUERY_LAMBDA_NAME)"
  value       = aws_lambda_function.query.function_name
}

output "stream_processor_name" {
  description = "Function behind the stream mapping"
  value       = aws_lambda_function.stream_processor.function_name
}

output "stream_processor_dlq_url" {
  description = "Where discarded stream batches land"
  value       = aws_sqs_queue.stream_processor_dlq.url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the service"
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_name" {
  description = "ECS service (SERVICE_NAME for scripts/deploy-ecs.sh)"
  value       = aws_ecs_service.query_service.name
}

output "alb_dns_name" {
  description = "Internal ALB in front of the tasks"
  value       = aws_lb.alb.dns_name
}

output "nlb_dns_name" {
  description = "Internal NLB the VPC link targets"
  value       = aws_lb.nlb.dns_name
}

output "rest_api_id" {
  description = "Private REST API id"
  value       = aws_api_gateway_rest_api.internal.id
}

output "vpc_endpoint_id" {
  description = "execute-api interface endpoint"
  value       = aws_vpc_endpoint.execute_api.id
}

output "api_invoke_url" {
  description = "Base URL of stage v1 (reachable from inside the VPC)"
  value       = "https://${aws_api_gateway_rest_api.internal.id}-${aws_vpc_endpoint.execute_api.id}.execute-api.${var.aws_region}.amazonaws.com/${aws_api_gateway_stage.v1.stage_name}"
}
