output "queues" {
  description = "Full queue names."
  value       = { for id, q in google_cloud_tasks_queue.queues : id => q.id }
}

output "bicep_google_parameter" {
  description = "The Bicep parameter google, ready to paste into main.bicepparam: project number, pool and provider ids, the enqueuer and invoker service accounts."
  value = {
    projectId                  = var.project_id
    projectNumber              = local.project_number
    location                   = var.location
    workloadIdentityPoolId     = google_iam_workload_identity_pool.azure.workload_identity_pool_id
    workloadIdentityProviderId = google_iam_workload_identity_pool_provider.function_app.workload_identity_pool_provider_id
    enqueuerServiceAccount     = google_service_account.enqueuer.email
    invokerServiceAccount      = google_service_account.invoker.email
  }
}

module "credential_configuration" {
  source = "./modules/credential-configuration"

  project_number                = local.project_number
  workload_identity_pool_id     = google_iam_workload_identity_pool.azure.workload_identity_pool_id
  workload_identity_provider_id = google_iam_workload_identity_pool_provider.function_app.workload_identity_pool_provider_id
  service_account_email         = google_service_account.enqueuer.email
  azure_token_audience          = var.azure_token_audience
}

output "credential_configuration" {
  description = "external_account credential configuration (no key): Credential=File on hosts with Azure IMDS, gcloud auth login --cred-file, or any Google client library."
  value       = module.credential_configuration.json
}

output "function_app_settings" {
  description = "The Bridge__CloudTasks__* settings the Bicep composes from the same values, to compare with the deployed app."
  value       = module.credential_configuration.bridge_settings
}
