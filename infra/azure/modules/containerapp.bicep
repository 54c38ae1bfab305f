// The self-hosted runner (src/Bridge.Server) on Azure Container Apps: a registry its identity pulls from, an
// environment logging to Log Analytics by Entra ID, and the app, scaled by KEDA's Service Bus scaler on the intake
// queue with the same user-assigned identity (no connection string anywhere).
import { builtInRoles } from 'roles.bicep'

param appName string
param location string
param tags object
param registryName string
param identityId string
param identityClientId string
param identityPrincipalId string
param applicationInsightsConnectionString string
param workspaceId string
@description('The image, e.g. <registry>.azurecr.io/bridge-server:<tag>. Empty: registry and environment only (the first pass, before an image is pushed).')
param image string
@description('The bridge\'s own settings (Bridge__*, BridgeServiceBus__*), composed by main.bicep.')
param bridgeSettings object
@description('Routes whose tasks call this app\'s own callback; their TargetUrl is set here.')
param callbackRoutes string[]
param serviceBusNamespaceName string
param intakeQueueName string
param handBackQueueName string
@minValue(0)
param minReplicas int
@minValue(1)
param maxReplicas int
@minValue(1)
param messagesPerReplica int
@minValue(1)
param concurrentRequestsPerReplica int
@minValue(10)
param drainSeconds int
@allowed(['0.25', '0.5', '1', '2'])
param cpu string
param ingress ingressChoice

import { ingressChoice } from 'ingress.bicep'

var external = ingress.kind == 'External'
// Consumption profile pairs: 0.5 GiB per 0.25 vCPU.
var memoryFor = { '0.25': '0.5Gi', '0.5': '1Gi', '1': '2Gi', '2': '4Gi' }
var port = 8080

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: { name: 'Basic' }
  properties: {
    // Entra ID only: no admin user name/password (anonymous pull is off by default, and Basic cannot turn it on).
    adminUserEnabled: false
  }
}

resource pull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identityPrincipalId, builtInRoles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.acrPull)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: '${appName}-env'
  location: location
  tags: tags
  properties: {
    // Logs through Azure Monitor (the diagnostic setting below): the 'log-analytics' destination would need the
    // workspace's shared key, which the workspace does not have (local auth off).
    appLogsConfiguration: { destination: 'azure-monitor' }
    workloadProfiles: [{ name: 'Consumption', workloadProfileType: 'Consumption' }]
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: environment
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

// Known before the app exists: the environment's domain; internal apps get an ".internal." label.
var hostName = external ? '${appName}.${environment.properties.defaultDomain}' : '${appName}.internal.${environment.properties.defaultDomain}'
var callbackUrl = 'https://${hostName}/api/tasks/callback'

var runnerSettings = {
  Bridge__Server__ListenAddress: '0.0.0.0'
  Bridge__Server__Port: string(port)
  // Never the embedded emulator in Azure, even if a setting were missing: start-up fails instead.
  Bridge__Server__EmbeddedEmulator: 'false'
  // The host's shutdown budget: ServiceBusProcessor.StopProcessingAsync waits for in-flight messages this long;
  // the platform's grace period below is longer, so SIGKILL never cuts a settlement.
  shutdownTimeoutSeconds: string(drainSeconds)
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential anywhere in the process picks the app's identity.
  AZURE_CLIENT_ID: identityClientId
}

var callbackSettings = union(
  { Bridge__Callback__PublicUrl: callbackUrl },
  toObject(callbackRoutes, r => 'Bridge__Routes__${r}__TargetUrl', r => callbackUrl)
)

// The runner's own intake authentication: it listens on 0.0.0.0, so it refuses to start without it. Entra ID with
// the ingress' intake application (tokens of this tenant, for its audiences, from the listed caller client ids). An
// internal ingress without an intake application trusts its environment (made for this app alone): the explicit
// opt-out, which the runner logs as a warning at every start.
var intakeAudiences = ingress.?intakeAudiences ?? []
var intakeCallers = ingress.?intakeCallerClientIds ?? []
var intakeSettings = empty(ingress.?intakeClientId ?? '')
  ? { Bridge__Server__Intake__UnsafeAllowAnonymousBeyondLoopback: 'true' }
  : union(
      {
        Bridge__Server__Intake__Entra__Instance: az.environment().authentication.loginEndpoint
        Bridge__Server__Intake__Entra__TenantId: tenant().tenantId
      },
      toObject(range(0, length(intakeAudiences)), i => 'Bridge__Server__Intake__Entra__Audiences__${i}', i => intakeAudiences[i]),
      toObject(range(0, length(intakeCallers)), i => 'Bridge__Server__Intake__Entra__AllowedClientIds__${i}', i => intakeCallers[i])
    )

var settings = union(runnerSettings, callbackSettings, intakeSettings, bridgeSettings)

var health = {
  httpGet: {
    path: '/api/health'
    port: port
    scheme: 'HTTP'
  }
}

resource app 'Microsoft.App/containerApps@2025-01-01' = if (!empty(image)) {
  name: appName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: external
        targetPort: port
        transport: 'http'
        allowInsecure: false
      }
      registries: [{ server: registry.properties.loginServer, identity: identityId }]
    }
    template: {
      // Longer than the host's drain (shutdownTimeoutSeconds): in-flight messages settle before SIGKILL.
      terminationGracePeriodSeconds: drainSeconds + 15
      containers: [
        {
          name: 'bridge'
          image: image
          resources: {
            cpu: json(cpu)
            memory: memoryFor[cpu]
          }
          env: map(items(settings), s => { name: s.key, value: s.value })
          probes: [
            union(health, { type: 'Startup', initialDelaySeconds: 1, periodSeconds: 2, failureThreshold: 30 })
            union(health, { type: 'Readiness', periodSeconds: 10, failureThreshold: 3 })
            union(health, { type: 'Liveness', periodSeconds: 30, failureThreshold: 3 })
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            // KEDA's azure-servicebus scaler with the app's identity: active messages / messageCount replicas.
            name: 'intake-queue'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                namespace: serviceBusNamespaceName
                queueName: intakeQueueName
                messageCount: string(messagesPerReplica)
              }
              identity: identityId
            }
          }
          {
            // Hand-back copies coming due wake a scaled-to-zero app too: the runner receives from that queue as well.
            name: 'handback-queue'
            custom: {
              type: 'azure-servicebus'
              metadata: {
                namespace: serviceBusNamespaceName
                queueName: handBackQueueName
                messageCount: string(messagesPerReplica)
              }
              identity: identityId
            }
          }
          {
            // Callbacks and HTTP intake wake a scaled-to-zero app and add replicas under load.
            name: 'http'
            http: {
              metadata: { concurrentRequests: string(concurrentRequestsPerReplica) }
            }
          }
        ]
      }
    }
  }
  dependsOn: [pull]
}

// Intake is also authenticated at the ingress (Entra ID, Easy Auth), before a request wakes or reaches a replica:
// every path needs a token of the intake application, except the callback (it verifies Google's OIDC token) and
// health (probes, smoke test; it names no routes anonymously).
resource intakeAuth 'Microsoft.App/containerApps/authConfigs@2025-01-01' = if (!empty(image) && external) {
  parent: app
  name: 'current'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      unauthenticatedClientAction: 'Return401'
      excludedPaths: ['/api/tasks/callback', '/api/health']
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: ingress.?intakeClientId ?? ''
          openIdIssuer: '${az.environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: ingress.?intakeAudiences ?? []
          defaultAuthorizationPolicy: {
            allowedApplications: ingress.?intakeCallerClientIds ?? []
          }
        }
      }
    }
  }
}

output name string = appName
output hostName string = hostName
output registryLoginServer string = registry.properties.loginServer
output registryName string = registry.name
