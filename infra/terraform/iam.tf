# Least-privilege roles. Every statement names its actions one by one (no "*" and no
# "service:*") and, where the action supports it, the one resource it is for.

# ---------------------------------------------------------------- trust policies

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksAssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# ---------------------------------------------------------------- query-lambda

resource "aws_iam_role" "query_lambda" {
  name               = "query-lambda-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "query_lambda" {
  statement {
    sid     = "QueryReadTable"
    effect  = "Allow"
    actions = ["dynamodb:Query"]
    resources = [
      aws_dynamodb_table.notification_records.arn,
      "${aws_dynamodb_table.notification_records.arn}/index/*",
    ]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.query_lambda.arn}:*"]
  }
}

resource "aws_iam_role_policy" "query_lambda" {
  name   = "query-lambda"
  role   = aws_iam_role.query_lambda.id
  policy = data.aws_iam_policy_document.query_lambda.json
}

# ---------------------------------------------------------------- stream-processor

resource "aws_iam_role" "stream_processor" {
  name               = "stream-processor-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "stream_processor" {
  statement {
    sid       = "WriteReadTable"
    effect    = "Allow"
    actions   = ["dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.notification_records.arn]
  }

  statement {
    sid    = "ReadCommandStream"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
    ]
    resources = [
      aws_dynamodb_table.command_records.stream_arn,
      "${aws_dynamodb_table.command_records.arn}/stream/*",
    ]
  }

  statement {
    sid     = "ListStreams"
    effect  = "Allow"
    actions = ["dynamodb:ListStreams"]
    # ListStreams has no resource-level permissions (Service Authorization Reference: resource
    # type "*"); a stream ARN here would never match. parliament checks this (verify item 9c).
    resources = ["*"]
  }

  statement {
    sid       = "SendDiscardedBatchesToDlq"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.stream_processor_dlq.arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.stream_processor.arn}:*"]
  }
}

resource "aws_iam_role_policy" "stream_processor" {
  name   = "stream-processor"
  role   = aws_iam_role.stream_processor.id
  policy = data.aws_iam_policy_document.stream_processor.json
}

# ---------------------------------------------------------------- ECS task execution role
# Pulls the image and ships the container's logs. Its name matches executionRoleArn in
# ../ecs/task-definition.json (used by scripts/deploy-ecs.sh).

resource "aws_iam_role" "ecs_task_execution" {
  name               = "query-service-task-execution-role"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "ecs_task_execution" {
  statement {
    sid     = "EcrAuthorization"
    effect  = "Allow"
    actions = ["ecr:GetAuthorizationToken"]
    # GetAuthorizationToken has no resource-level permissions: AWS requires "*" here.
    resources = ["*"]
  }

  statement {
    sid    = "PullServiceImage"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [
      "arn:aws:ecr:${var.aws_region}:${data.aws_caller_identity.current.account_id}:repository/${var.ecr_repository_name}",
    ]
  }

  statement {
    sid       = "WriteServiceLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.query_service.arn}:*"]
  }
}

resource "aws_iam_role_policy" "ecs_task_execution" {
  name   = "query-service-task-execution"
  role   = aws_iam_role.ecs_task_execution.id
  policy = data.aws_iam_policy_document.ecs_task_execution.json
}

# ---------------------------------------------------------------- ECS task role
# What the service's code may do: invoke the query Lambda, nothing else. Its name matches
# taskRoleArn in ../ecs/task-definition.json.

resource "aws_iam_role" "ecs_task" {
  name               = "query-service-task-role"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "ecs_task" {
  statement {
    sid       = "InvokeQueryLambda"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.query.arn]
  }
}

resource "aws_iam_role_policy" "ecs_task" {
  name   = "query-service-task"
  role   = aws_iam_role.ecs_task.id
  policy = data.aws_iam_policy_document.ecs_task.json
}
