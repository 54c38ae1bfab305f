// Example parameters: copy, fill in your Google Cloud values (terraform output in infra/gcp), deploy.
using 'main.bicep'

param appName = 'bridge'
param hostingPlan = 'FlexConsumption'

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
