// Example parameters for the self-hosted runner on Azure Container Apps (docs/deploy.md, "Container Apps"): copy,
// fill in your Google Cloud values (terraform output in infra/gcp) and the intake application, deploy. The workflow
// overrides containerImage with the image it pushed (a first pass with '' creates the registry).
using 'main.bicep'

param appName = 'bridge'
param hostingPlan = 'ContainerApps'
param containerImage = 'bridgeregistry.azurecr.io/bridge-server:0123456789abcdef0123456789abcdef01234567'
param minReplicas = 0
param maxReplicas = 10

// Public, for Cloud Tasks' calls to the callback (the reminders route); everything else needs an Entra ID token of
// the intake application from one of the listed callers. Leave runnerIngress out for internal-only ingress.
param runnerIngress = {
  kind: 'External'
  intakeClientId: '8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b'
  intakeAudiences: ['api://8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b']
  intakeCallerClientIds: ['2b3c4d5e-6f70-4819-a2b3-c4d5e6f7a8b9']
}

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
