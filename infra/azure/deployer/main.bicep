// Who may deploy Bridge from GitHub Actions, keyless: two user-assigned identities that trust GitHub's OIDC tokens
// for one repository, each for one purpose. Deploy once, by an owner of both resource groups, into a resource group
// of its own (not the app's: an identity able to change its own trust is trusted by nobody).
//
//   az deployment group create -g <identities rg> -f infra/azure/deployer/main.bicep -p infra/azure/deployer/main.bicepparam
//
// Runbook: docs/deploy.md, section 7.
import { builtInRoles } from '../modules/roles.bicep'

targetScope = 'resourceGroup'

@description('The GitHub repository, owner/name.')
param repository string

@description('The GitHub environment the deploy job runs in. Protect it: required reviewers, deployment branches = main only.')
param environmentName string = 'production'

@description('Resource group the app is deployed into (infra/azure/main.bicep); the deployer\'s rights stop at it.')
param appResourceGroupName string

@description('Region of the identities.')
param location string = resourceGroup().location

var githubIssuer = 'https://token.actions.githubusercontent.com'

// GitHub's subject for a job that runs in an environment is repo:<owner>/<name>:environment:<environment>; the
// environment's branch policy (main only) is what ties it to refs/heads/main on this side (Azure matches the
// subject exactly; the Google provider also checks the ref claim itself).
resource deployer 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'bridge-github-deployer'
  location: location
}

resource deployerTrust 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: deployer
  name: 'github-${environmentName}'
  properties: {
    issuer: githubIssuer
    subject: 'repo:${repository}:environment:${environmentName}'
    audiences: ['api://AzureADTokenExchange']
  }
}

// Pull requests only preview (what-if): read everything, validate deployments, change nothing.
resource planner 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'bridge-github-planner'
  location: location
}

resource plannerTrust 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: planner
  name: 'github-pull-request'
  properties: {
    issuer: githubIssuer
    subject: 'repo:${repository}:pull_request'
    audiences: ['api://AzureADTokenExchange']
  }
  dependsOn: [deployerTrust] // one federated credential write at a time per resource group
}

module grants 'grants.bicep' = {
  name: 'bridge-github-grants'
  scope: resourceGroup(appResourceGroupName)
  params: {
    deployerPrincipalId: deployer.properties.principalId
    plannerPrincipalId: planner.properties.principalId
    // Exactly the roles infra/azure/main.bicep assigns to the app's identity.
    assignableRoles: [
      builtInRoles.serviceBusDataReceiver
      builtInRoles.serviceBusDataSender
      builtInRoles.storageBlobDataOwner
      builtInRoles.storageBlobDataContributor
      builtInRoles.storageQueueDataContributor
      builtInRoles.storageTableDataContributor
      builtInRoles.monitoringMetricsPublisher
      // hostingPlan ContainerApps: the identity owns the intake queue (KEDA's scaler) and pulls from the registry.
      builtInRoles.serviceBusDataOwner
      builtInRoles.acrPull
    ]
  }
}

@description('Repository variable AZURE_CLIENT_ID: the deploy job signs in as this.')
output deployerClientId string = deployer.properties.clientId

@description('Repository variable AZURE_PLAN_CLIENT_ID: the pull request what-if signs in as this.')
output plannerClientId string = planner.properties.clientId
