# Who is who. The bridge (an Azure managed identity) becomes the enqueuer service account through workload
# identity federation; tasks carry the invoker service account's OIDC token, which targets and the bridge's
# callback verify.

resource "google_service_account" "enqueuer" {
  project      = var.project_id
  account_id   = var.enqueuer_service_account_id
  display_name = "Bridge: creates Cloud Tasks (acted as by the Azure function app)"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = var.invoker_service_account_id
  display_name = "Bridge: identity of the tasks' OIDC tokens"

  depends_on = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool" "azure" {
  project                   = var.project_id
  workload_identity_pool_id = var.workload_identity_pool_id
  display_name              = "Bridge (Azure)"
  description               = "Azure managed identities of the Bridge function app"

  depends_on = [google_project_service.apis]
}

resource "google_iam_workload_identity_pool_provider" "function_app" {
  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.azure.workload_identity_pool_id
  workload_identity_pool_provider_id = var.workload_identity_provider_id
  display_name                       = "Bridge function app"
  description                        = "Entra ID tokens of the function app's managed identity"

  # Google's pattern for Azure: the managed identity asks Entra ID for a token for a dedicated single-tenant
  # application that issues v1 tokens; iss is then the tenant's v1 issuer, aud that application's App ID URI (the
  # URI asked for), sub and oid the identity's object id. The app checks the same before sending a token here.
  oidc {
    issuer_uri        = "https://sts.windows.net/${var.azure_tenant_id}/"
    allowed_audiences = [var.azure_token_audience]
  }

  attribute_mapping = {
    "google.subject"   = "assertion.sub"
    "attribute.tenant" = "assertion.tid"
  }

  # Only the one identity, from the one tenant, even if someone else's token has the same audience.
  attribute_condition = "assertion.tid == '${var.azure_tenant_id}' && assertion.sub == '${var.azure_managed_identity_principal_id}'"
}

locals {
  federated_principal = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.azure.name}/subject/${var.azure_managed_identity_principal_id}"
}
