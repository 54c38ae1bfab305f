# The client side of workload identity federation, computed from the pool, provider and service account: a
# Google external_account credential configuration (a key-free file that says where to get the Azure token
# and how to exchange it), and the same values as the function app's Bridge__CloudTasks__* settings.
# No provider, no resources: a pure function of its inputs, so `terraform test` runs it anywhere.

terraform {
  required_version = ">= 1.6"
}

variable "project_number" {
  description = "Project number (digits) of the workload identity pool."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.project_number))
    error_message = "project_number is the project's number (digits), not its id."
  }
}

variable "workload_identity_pool_id" {
  description = "Workload identity pool id."
  type        = string
}

variable "workload_identity_provider_id" {
  description = "Workload identity pool provider id."
  type        = string
}

variable "service_account_email" {
  description = "Service account the federated identity acts as; empty to use the federated identity directly."
  type        = string
  default     = ""
}

variable "azure_token_audience" {
  description = "App ID URI of the Entra federation application: the resource the identity asks Entra ID for, and the aud of the v1 token it gets, which the provider allows."
  type        = string

  validation {
    condition     = !startswith(lower(var.azure_token_audience), "api://azureadtokenexchange") && !endswith(var.azure_token_audience, "/.default")
    error_message = "azure_token_audience is the Entra federation application's App ID URI (Bicep output federationAppIdUri), e.g. api://<application id>: not api://AzureADTokenExchange (no Entra token carries it) and without /.default."
  }
}

variable "azure_managed_identity_client_id" {
  description = "Client id of a user-assigned managed identity, for the IMDS token URL; empty for the system-assigned one."
  type        = string
  default     = ""
}

locals {
  audience = "//iam.googleapis.com/projects/${var.project_number}/locations/global/workloadIdentityPools/${var.workload_identity_pool_id}/providers/${var.workload_identity_provider_id}"

  impersonation_url = var.service_account_email == "" ? null : "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${var.service_account_email}:generateAccessToken"

  imds_token_url = join("", [
    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=",
    urlencode(var.azure_token_audience),
    var.azure_managed_identity_client_id == "" ? "" : "&client_id=${var.azure_managed_identity_client_id}",
  ])

  configuration = merge(
    {
      type               = "external_account"
      audience           = local.audience
      subject_token_type = "urn:ietf:params:oauth:token-type:jwt"
      token_url          = "https://sts.googleapis.com/v1/token"
      credential_source = {
        url     = local.imds_token_url
        headers = { Metadata = "True" }
        format = {
          type                     = "json"
          subject_token_field_name = "access_token"
        }
      }
    },
    local.impersonation_url == null ? {} : { service_account_impersonation_url = local.impersonation_url },
  )
}

output "json" {
  description = "The external_account credential configuration, as JSON."
  value       = jsonencode(local.configuration)
}

output "bridge_settings" {
  description = "The same federation as the function app's app settings (its token comes from Azure.Identity, which also works where IMDS does not, e.g. App Service)."
  value = merge(
    {
      Bridge__CloudTasks__Credential                           = "AzureWorkloadIdentity"
      Bridge__CloudTasks__WorkloadIdentity__Audience           = local.audience
      Bridge__CloudTasks__WorkloadIdentity__AzureTokenScope    = "${var.azure_token_audience}/.default"
      Bridge__CloudTasks__WorkloadIdentity__AzureTokenAudience = var.azure_token_audience
    },
    local.impersonation_url == null ? {} : { Bridge__CloudTasks__WorkloadIdentity__ServiceAccountImpersonationUrl = local.impersonation_url },
  )
}
