# terraform test: evaluates the module with sample inputs, no cloud account needed.

variables {
  project_number                = "123456789012"
  workload_identity_pool_id     = "bridge-azure"
  workload_identity_provider_id = "bridge-function-app"
  service_account_email         = "bridge-enqueuer@my-project.iam.gserviceaccount.com"
  azure_token_audience          = "api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f"
}

run "external_account_for_azure_imds" {
  command = plan

  assert {
    condition     = jsondecode(output.json).type == "external_account"
    error_message = "The configuration must be an external_account credential."
  }

  assert {
    condition     = jsondecode(output.json).audience == "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/bridge-azure/providers/bridge-function-app"
    error_message = "The audience must name the provider by project number."
  }

  assert {
    condition     = jsondecode(output.json).credential_source.url == "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2F5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f"
    error_message = "The subject token must come from Azure IMDS for the federation application's App ID URI."
  }

  assert {
    condition     = output.bridge_settings["Bridge__CloudTasks__WorkloadIdentity__AzureTokenScope"] == "api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f/.default" && output.bridge_settings["Bridge__CloudTasks__WorkloadIdentity__AzureTokenAudience"] == "api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f"
    error_message = "The app asks for <App ID URI>/.default and expects the App ID URI as the token's audience."
  }

  assert {
    condition     = jsondecode(output.json).service_account_impersonation_url == "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/bridge-enqueuer@my-project.iam.gserviceaccount.com:generateAccessToken"
    error_message = "The configuration must impersonate the enqueuer."
  }

  assert {
    condition     = !can(jsondecode(output.json).private_key)
    error_message = "The configuration must hold no key."
  }

  assert {
    condition     = output.bridge_settings["Bridge__CloudTasks__WorkloadIdentity__Audience"] == jsondecode(output.json).audience
    error_message = "The app settings and the file must name the same provider."
  }
}

run "user_assigned_identity_and_no_impersonation" {
  command = plan

  variables {
    service_account_email            = ""
    azure_managed_identity_client_id = "4c6e7d2a-1b2c-4d5e-8f90-123456789abc"
  }

  assert {
    condition     = endswith(jsondecode(output.json).credential_source.url, "&client_id=4c6e7d2a-1b2c-4d5e-8f90-123456789abc")
    error_message = "A user-assigned identity is named in the IMDS URL."
  }

  assert {
    condition     = !can(jsondecode(output.json).service_account_impersonation_url)
    error_message = "No service account: no impersonation."
  }

  assert {
    condition     = !contains(keys(output.bridge_settings), "Bridge__CloudTasks__WorkloadIdentity__ServiceAccountImpersonationUrl")
    error_message = "No service account: no impersonation setting."
  }
}

run "the_entra_exchange_audience_is_refused" {
  command = plan

  variables {
    azure_token_audience = "api://AzureADTokenExchange"
  }

  expect_failures = [var.azure_token_audience]
}

run "a_project_id_is_refused_where_the_number_belongs" {
  command = plan

  variables {
    project_number = "my-project"
  }

  expect_failures = [var.project_number]
}
