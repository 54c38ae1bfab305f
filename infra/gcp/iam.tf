# Least privilege, each grant on the narrowest resource that takes it.

# The Azure identity may act as the enqueuer service account (token exchange + impersonation).
resource "google_service_account_iam_member" "federated_enqueuer" {
  service_account_id = google_service_account.enqueuer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = local.federated_principal
}

# The enqueuer creates tasks on the bridge's queues, and reads them: the callback reads a queue's
# max_attempts to report a task's last attempt as failed.
locals {
  enqueuer_queue_roles = ["roles/cloudtasks.enqueuer", "roles/cloudtasks.viewer"]
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = {
    for pair in setproduct(keys(var.queues), local.enqueuer_queue_roles) : "${pair[0]} ${pair[1]}" => { queue = pair[0], role = pair[1] }
  }

  project  = google_cloud_tasks_queue.queues[each.value.queue].project
  location = google_cloud_tasks_queue.queues[each.value.queue].location
  name     = google_cloud_tasks_queue.queues[each.value.queue].name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.enqueuer.email}"
}

# Creating a task with an OIDC token for the invoker requires iam.serviceAccounts.actAs on it.
resource "google_service_account_iam_member" "enqueuer_acts_as_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.enqueuer.email}"
}

# Cloud Tasks' service agent mints the invoker's OIDC tokens at dispatch, and needs nothing else of it: the OpenID
# token creator role (iam.serviceAccounts.getOpenIdToken), not Token Creator (which adds access tokens, signing
# and impersonation). Projects that enabled Cloud Tasks after March 2019 grant this through roles/cloudtasks.serviceAgent
# already; older ones need it here.
resource "google_service_account_iam_member" "service_agent_mints_invoker_tokens" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountOpenIdTokenCreator"
  member             = "serviceAccount:${local.cloud_tasks_service_agent}"

  depends_on = [google_cloud_tasks_queue.queues]
}
