// The function app: Linux, .NET 10 isolated, on Flex Consumption (default) or Elastic Premium, running as
// the bridge's user-assigned identity. Host storage is reached by identity too (no account keys).
import { builtInRoles } from 'roles.bicep'

param appName string
param location string
param tags object
@allowed(['FlexConsumption', 'ElasticPremium'])
param hostingPlan string
param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int
@allowed(['EP1', 'EP2', 'EP3'])
param premiumSku string
param storageAccountName string
param identityId string
param identityClientId string
param identityPrincipalId string
param applicationInsightsConnectionString string
@description('The bridge\'s own settings (Bridge__*, BridgeServiceBus__*), composed by main.bicep.')
param bridgeSettings object
@description('Routes whose tasks call this app\'s own callback; their TargetUrl is set here, once the host name exists.')
param callbackRoutes string[]

var isFlex = hostingPlan == 'FlexConsumption'
var deploymentContainerName = 'app-package'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

// The Functions host keeps leases, timers and scale state in blobs, queues and tables.
var storageRoles = [
  builtInRoles.storageBlobDataOwner
  builtInRoles.storageQueueDataContributor
  builtInRoles.storageTableDataContributor
]

resource storageAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in storageRoles: {
    name: guid(storage.id, identityPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${appName}-plan'
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'elastic'
  sku: isFlex ? { name: 'FC1', tier: 'FlexConsumption' } : { name: premiumSku, tier: 'ElasticPremium' }
  properties: {
    reserved: true
    maximumElasticWorkerCount: isFlex ? null : maximumInstanceCount
  }
}

var hostSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // host.json says the same; as a setting it is visible (and overridable) where operators look.
  AzureFunctionsJobHost__telemetryMode: 'OpenTelemetry'
}

// Flex Consumption takes runtime and version from functionAppConfig and refuses these settings.
var premiumSettings = isFlex
  ? {}
  : {
      FUNCTIONS_EXTENSION_VERSION: '~4'
      FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'
      WEBSITE_RUN_FROM_PACKAGE: '1'
    }

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      linuxFxVersion: isFlex ? null : 'DOTNET-ISOLATED|10.0'
    }
    functionAppConfig: isFlex
      ? {
          deployment: {
            storage: {
              type: 'blobContainer'
              value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
              authentication: {
                type: 'UserAssignedIdentity'
                userAssignedIdentityResourceId: identityId
              }
            }
          }
          scaleAndConcurrency: {
            maximumInstanceCount: maximumInstanceCount
            instanceMemoryMB: instanceMemoryMB
          }
          runtime: {
            name: 'dotnet-isolated'
            version: '10.0'
          }
        }
      : null
  }
}

// No basic (user name/password) publishing: deployments authenticate with Entra ID (RBAC on the app).
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

var callbackUrl = 'https://${site.properties.defaultHostName}/api/tasks/callback'
var callbackSettings = union(
  { Bridge__Callback__PublicUrl: callbackUrl },
  toObject(callbackRoutes, r => 'Bridge__Routes__${r}__TargetUrl', r => callbackUrl)
)

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(hostSettings, premiumSettings, callbackSettings, bridgeSettings)
  dependsOn: [storageAccess]
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
