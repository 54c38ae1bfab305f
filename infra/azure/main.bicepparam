// Example parameters: copy, fill in your Google Cloud values (terraform output in infra/gcp), deploy.
using 'main.bicep'

param appName = 'bridge'
param hostingPlan = 'FlexConsumption'

// The Entra federation application's App ID URI (docs/deploy.md, step 1): api://<its application (client) id>.
param federationAppIdUri = 'api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f'

param google = {
  projectId: 'my-project'
  projectNumber: '123456789012'
  location: 'us-central1'
  workloadIdentityPoolId: 'bridge-azure'
  workloadIdentityProviderId: 'bridge-function-app'
  enqueuerServiceAccount: 'bridge-enqueuer@my-project.iam.gserviceaccount.com'
  invokerServiceAccount: 'bridge-tasks-invoker@my-project.iam.gserviceaccount.com'
}

param routes = [
  {
    name: 'orders'
    queue: 'orders'
    targetUrl: 'https://orders-worker-abc123-uc.a.run.app/tasks/orders'
    httpMethod: 'POST'
    schedulePolicy: 'Reject'
    dispatchDeadline: '00:10:00'
    carryProperties: ['tenant']
    carryHeaders: ['X-Tenant']
    headers: { 'X-Api-Version': '2' }
  }
  {
    // No targetUrl: tasks call the bridge's own callback (delayed delivery back into Azure, outcomes on Service Bus).
    name: 'reminders'
    queue: 'reminders'
    serviceBusSubject: 'reminder'
    defaultDelay: '00:05:00'
  }
]
