# Bridge on Google Cloud: the queues tasks go to, the two service accounts (the one the bridge acts as to create
# tasks, the one whose OIDC token tasks carry), and workload identity federation that lets the function app's
# Azure managed identity act as the first, keyless. Runbook: docs/deploy.md.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  apis = toset([
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
  ])

  # Cloud Tasks' own service agent mints the tasks' OIDC tokens.
  cloud_tasks_service_agent = "service-${local.project_number}@gcp-sa-cloudtasks.iam.gserviceaccount.com"
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_cloud_tasks_queue" "queues" {
  for_each = var.queues

  project  = var.project_id
  location = var.location
  name     = each.key

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = each.value.max_attempts
    max_retry_duration = each.value.max_retry_duration
    min_backoff        = each.value.min_backoff
    max_backoff        = each.value.max_backoff
    max_doublings      = each.value.max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = each.value.sampling_ratio
  }

  depends_on = [google_project_service.apis]
}
