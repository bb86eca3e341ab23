# The private REST API, its VPC endpoint, stage v1 and the VPC link to the service.
#
# The routes, integrations and resource policy live in ../api-gateway/internal-api.json (read
# here with file(), never repeated). Only its two deploy-time placeholders are filled in.
#
# Load balancer wiring (checked against the AWS docs, 2025-11): REST APIs can now reach an ALB
# directly through a VPC link V2 (integrationTarget = the ALB ARN), and VPC links V1 (NLB only)
# are called legacy. We still wire a VPC link V1 -> internal NLB -> the internal ALB (an NLB
# target group of target_type "alb"), because this API is imported from an OpenAPI body, and
# the documented OpenAPI form of a private integration (connectionType VPC_LINK + connectionId,
# here the stage variable vpcLinkId) carries no integrationTarget. Moving to VPC link V2 means:
# aws_apigatewayv2_vpc_link + integration_target on each integration, and dropping the NLB.

locals {
  internal_api_path     = "${path.module}/../api-gateway/internal-api.json"
  internal_api_document = jsondecode(file(local.internal_api_path))
  internal_api_body = replace(
    replace(file(local.internal_api_path), "$${vpc_id}", var.vpc_id),
    "$${vpc_endpoint_id}",
    aws_vpc_endpoint.execute_api.id,
  )
  api_stage_name = local.internal_api_document.servers[0].variables.basePath.default
}

# ---------------------------------------------------------------- VPC endpoint (private API)

resource "aws_security_group" "execute_api_endpoint" {
  name        = "query-service-execute-api-endpoint"
  description = "execute-api interface endpoint: HTTPS from inside the VPC"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTPS from the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.selected.cidr_block]
  }
}

resource "aws_vpc_endpoint" "execute_api" {
  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.aws_region}.execute-api"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.execute_api_endpoint.id]
}

# ---------------------------------------------------------------- NLB in front of the ALB

resource "aws_lb" "nlb" {
  name               = "query-service-nlb"
  internal           = true
  load_balancer_type = "network"
  subnets            = var.private_subnet_ids
}

resource "aws_lb_target_group" "nlb_to_alb" {
  name        = "query-service-nlb-to-alb"
  port        = 80
  protocol    = "TCP"
  target_type = "alb"
  vpc_id      = var.vpc_id

  health_check {
    enabled             = true
    protocol            = "HTTP"
    path                = "/health"
    port                = "traffic-port"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_target_group_attachment" "nlb_to_alb" {
  target_group_arn = aws_lb_target_group.nlb_to_alb.arn
  target_id        = aws_lb.alb.arn
  port             = 80
  depends_on       = [aws_lb_listener.alb_http]
}

resource "aws_lb_listener" "nlb_tcp" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 80
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.nlb_to_alb.arn
  }
}

resource "aws_api_gateway_vpc_link" "nlb" {
  name        = "query-service-nlb"
  description = "VPC link (V1) from the internal REST API to the query service NLB"
  target_arns = [aws_lb.nlb.arn]
}

# ---------------------------------------------------------------- REST API and stage v1

resource "aws_api_gateway_rest_api" "internal" {
  name              = local.internal_api_document.info.title
  description       = local.internal_api_document.info.description
  body              = local.internal_api_body
  put_rest_api_mode = "overwrite"

  endpoint_configuration {
    types            = ["PRIVATE"]
    vpc_endpoint_ids = [aws_vpc_endpoint.execute_api.id]
  }
}

resource "aws_api_gateway_deployment" "internal" {
  rest_api_id = aws_api_gateway_rest_api.internal.id

  triggers = {
    redeployment = sha1(local.internal_api_body)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_stage" "v1" {
  rest_api_id   = aws_api_gateway_rest_api.internal.id
  deployment_id = aws_api_gateway_deployment.internal.id
  stage_name    = local.api_stage_name

  variables = {
    vpcLinkId           = aws_api_gateway_vpc_link.nlb.id
    loadBalancerDnsName = aws_lb.nlb.dns_name
  }
}
