# Who may run infra/gcp from GitHub Actions, keyless: a workload identity pool that trusts GitHub's OIDC tokens for
# one repository, a deployer service account for pushes to main in the protected environment, and a planner service
# account for pull requests (terraform plan, read only). Apply once, by a project owner, with local state or a
# state of its own: this root grants the rights the deploy job uses, so the deploy job must not be able to change it.
# Runbook: docs/deploy.md, section 7.

terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
  }
}

provider "google" {
  project = var.project_id
}

variable "project_id" {
  description = "Google Cloud project of the bridge (the one infra/gcp manages)."
  type        = string
}

variable "github_repository" {
  description = "The GitHub repository, owner/name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name."
  }
}

variable "github_environment" {
  description = "GitHub environment of the deploy job (protected: required reviewers, deployment branches = main only)."
  type        = string
  default     = "production"
}

variable "deploy_ref" {
  description = "The only ref that may deploy."
  type        = string
  default     = "refs/heads/main"
}

variable "terraform_state_bucket" {
  description = "GCS bucket of infra/gcp's state (workflow variable TERRAFORM_STATE_BUCKET)."
  type        = string
}

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project_id
  workload_identity_pool_id = "bridge-github"
  display_name              = "Bridge (GitHub Actions)"
  description               = "GitHub Actions jobs of ${var.github_repository}"
}

resource "google_iam_workload_identity_pool_provider" "github" {
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "bridge-repository"
  display_name                       = "Bridge repository"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
    "attribute.event_name" = "assertion.event_name"
  }

  # One repository; and from it only pull requests (to plan) or jobs on main in the protected environment (to
  # deploy). A token from any other repository, branch or environment is refused before any binding is looked at.
  attribute_condition = "assertion.repository == '${var.github_repository}' && (assertion.event_name == 'pull_request' || (assertion.ref == '${var.deploy_ref}' && assertion.environment == '${var.github_environment}'))"
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "bridge-deployer"
  display_name = "Bridge: applies infra/gcp from GitHub Actions (main, ${var.github_environment})"
}

resource "google_service_account" "planner" {
  project      = var.project_id
  account_id   = "bridge-planner"
  display_name = "Bridge: plans infra/gcp for pull requests (read only)"
}

# GitHub's subject for a job in an environment: repo:<owner>/<name>:environment:<environment>.
resource "google_service_account_iam_member" "github_deploys" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/subject/repo:${var.github_repository}:environment:${var.github_environment}"
}

resource "google_service_account_iam_member" "github_plans" {
  service_account_id = google_service_account.planner.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.event_name/pull_request"
}

locals {
  # What infra/gcp creates, and nothing more: no project IAM admin (infra/gcp grants nothing project-wide), no owner.
  deployer_roles = toset([
    "roles/cloudtasks.admin",               # queues, and IAM on queues
    "roles/iam.serviceAccountAdmin",        # the enqueuer and invoker accounts, and IAM on them
    "roles/iam.workloadIdentityPoolAdmin",  # the Azure pool and provider
    "roles/serviceusage.serviceUsageAdmin", # enabling the four APIs
    "roles/browser",                        # data "google_project" (the project number)
  ])

  planner_roles = toset([
    "roles/cloudtasks.viewer",
    "roles/iam.serviceAccountViewer",
    "roles/iam.workloadIdentityPoolViewer",
    "roles/iam.securityReviewer", # reads IAM policies, changes none
    "roles/serviceusage.serviceUsageViewer",
    "roles/browser",
  ])
}

resource "google_project_iam_member" "deployer" {
  for_each = local.deployer_roles

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_project_iam_member" "planner" {
  for_each = local.planner_roles

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.planner.email}"
}

resource "google_storage_bucket_iam_member" "deployer_state" {
  bucket = var.terraform_state_bucket
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_storage_bucket_iam_member" "planner_state" {
  bucket = var.terraform_state_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.planner.email}"
}

output "workflow_variables" {
  description = "Repository variables for .github/workflows/deploy.yml."
  value = {
    GCP_DEPLOY_PROVIDER        = google_iam_workload_identity_pool_provider.github.name
    GCP_DEPLOY_SERVICE_ACCOUNT = google_service_account.deployer.email
    GCP_PLAN_SERVICE_ACCOUNT   = google_service_account.planner.email
  }
}
