variable "project_id" {
  description = "Google Cloud project that holds the queues and service accounts."
  type        = string
}

variable "location" {
  description = "Cloud Tasks location of the queues (Bicep google.location)."
  type        = string
  default     = "us-central1"
}

variable "azure_tenant_id" {
  description = "Entra ID tenant of the function app's managed identity (Bicep output tenantId)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.azure_tenant_id))
    error_message = "azure_tenant_id must be a tenant GUID (Bicep output tenantId)."
  }
}

variable "azure_managed_identity_principal_id" {
  description = "Object (principal) id of the function app's user-assigned managed identity (Bicep output managedIdentityPrincipalId); the only Azure identity Google trusts."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.azure_managed_identity_principal_id))
    error_message = "azure_managed_identity_principal_id must be the identity's object id GUID (Bicep output managedIdentityPrincipalId)."
  }
}

variable "azure_token_audience" {
  description = "App ID URI of the single-tenant Entra federation application (Bicep output federationAppIdUri): the aud of the v1 tokens the managed identity gets for it, and the only audience the provider allows."
  type        = string

  validation {
    condition     = !startswith(lower(var.azure_token_audience), "api://azureadtokenexchange") && !endswith(var.azure_token_audience, "/.default")
    error_message = "azure_token_audience is the Entra federation application's App ID URI (Bicep output federationAppIdUri), e.g. api://<application id>: not api://AzureADTokenExchange (no Entra token carries it) and without /.default."
  }
}

variable "workload_identity_pool_id" {
  description = "Workload identity pool id (Bicep google.workloadIdentityPoolId)."
  type        = string
  default     = "bridge-azure"
}

variable "workload_identity_provider_id" {
  description = "Workload identity pool provider id (Bicep google.workloadIdentityProviderId)."
  type        = string
  default     = "bridge-function-app"
}

variable "enqueuer_service_account_id" {
  description = "Account id of the service account the bridge acts as to create tasks."
  type        = string
  default     = "bridge-enqueuer"
}

variable "invoker_service_account_id" {
  description = "Account id of the service account whose OIDC token tasks carry; targets (and the bridge's callback) accept it."
  type        = string
  default     = "bridge-tasks-invoker"
}

variable "queues" {
  description = "Cloud Tasks queues, by queue id: dispatch rate limits and retry policy. Durations are seconds with an 's' suffix; unset fields take the service's defaults."
  type = map(object({
    max_dispatches_per_second = optional(number, 500)
    max_concurrent_dispatches = optional(number, 1000)
    max_attempts              = optional(number, 100)
    max_retry_duration        = optional(string, "0s")
    min_backoff               = optional(string, "0.100s")
    max_backoff               = optional(string, "3600s")
    max_doublings             = optional(number, 16)
    sampling_ratio            = optional(number, 1)
  }))
  default = {
    orders    = { max_dispatches_per_second = 50, max_attempts = 20, max_backoff = "600s", max_doublings = 5 }
    reminders = { max_dispatches_per_second = 5, max_attempts = 10 }
  }

  validation {
    condition     = alltrue([for id in keys(var.queues) : can(regex("^[A-Za-z0-9-]{1,100}$", id))])
    error_message = "Queue ids are 1 to 100 letters, digits or hyphens."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_dispatches_per_second > 0 && q.max_dispatches_per_second <= 500])
    error_message = "max_dispatches_per_second must be above 0 and at most 500."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_concurrent_dispatches >= 1 && q.max_concurrent_dispatches <= 5000])
    error_message = "max_concurrent_dispatches must be 1 to 5000."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.max_attempts == -1 || q.max_attempts >= 1])
    error_message = "max_attempts must be -1 (unlimited) or at least 1."
  }

  validation {
    condition     = alltrue([for q in values(var.queues) : q.sampling_ratio >= 0 && q.sampling_ratio <= 1])
    error_message = "sampling_ratio must be between 0 and 1."
  }
}

variable "enable_apis" {
  description = "Enable the APIs the bridge needs (Cloud Tasks, IAM, IAM credentials, STS)."
  type        = bool
  default     = true
}
