terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The check in tests/infra validates against this provider's schema (6.50).
      version = "~> 6.50"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.location
}
