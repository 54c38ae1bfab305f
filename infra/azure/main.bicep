// Bridge on Azure: a function app (or the self-hosted runner on Container Apps) that forwards Service Bus and HTTP events to Google Cloud Tasks and takes
// Cloud Tasks' calls back, with no secret anywhere: Service Bus, storage and Application Insights by managed
// identity, Google Cloud by workload identity federation of that same identity (see infra/gcp).
//
// Deploy: az deployment group create -g <rg> -f infra/azure/main.bicep -p infra/azure/main.bicepparam
// Runbook: docs/deploy.md

targetScope = 'resourceGroup'

@description('One route: where its events go. Every field becomes a Bridge__Routes__<name>__* app setting.')
type route = {
  @description('Route name: letters, digits and _ only (it is part of app setting names, which Linux allows only letters, digits, . and _ in; the app refuses others at start-up). HTTP intake is POST /api/events/<name>.')
  name: string

  @description('Cloud Tasks queue id in google.location (created by infra/gcp).')
  queue: string

  @description('The URL tasks call. Empty: the bridge\'s own callback, i.e. delayed, rate-limited delivery back into Azure.')
  targetUrl: string?

  @description('HTTP method of the task (default POST).')
  httpMethod: ('POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE' | 'HEAD' | 'OPTIONS')?

  @description('OIDC audience of the task\'s token (default: the target URL).')
  audience: string?

  @description('Only Service Bus messages with this Subject take the route; messages naming no route take defaultRoute.')
  serviceBusSubject: string?

  @description('Delay for events without a schedule, hh:mm:ss.')
  defaultDelay: string?

  @description('Schedules beyond the 30-day limit: Reject (dead-letter / 422) or Clamp.')
  schedulePolicy: ('Reject' | 'Clamp')?

  @description('How long Cloud Tasks waits for the target, 00:00:15 to 00:30:00 (default: the service\'s 10 minutes).')
  dispatchDeadline: string?

  @description('Service Bus application properties sent with the task as X-Bridge-Property-<name>.')
  carryProperties: string[]?

  @description('HTTP intake headers copied to the task (not Authorization, Host, X-CloudTasks-*, X-Google-*, X-AppEngine-*, X-Bridge-*).')
  carryHeaders: string[]?

  @description('Service accounts (email) allowed to report this route\'s outcomes to the callback; none: nobody may.')
  reportingServiceAccounts: string[]?

  @description('Accounts the route\'s tasks were signed as before a rotation: their dispatches are still accepted by the callback.')
  previousServiceAccounts: string[]?

  @description('Static headers every task of the route carries (not X-CloudTasks-*, X-Google-*, X-AppEngine-*); deployed as indexed Headers__<n>__Name/__Value settings.')
  headers: { *: string }?
}

@description('What infra/gcp created; the function app reaches Cloud Tasks with these, keyless.')
type googleCloud = {
  @description('Project id, e.g. my-project.')
  projectId: string

  @description('Project number (digits); workload identity audiences are written with it.')
  projectNumber: string

  @description('Cloud Tasks location of the queues, e.g. us-central1.')
  location: string

  @description('Workload identity pool id (terraform output bicep_google_parameter).')
  workloadIdentityPoolId: string

  @description('Workload identity pool provider id (terraform output bicep_google_parameter).')
  workloadIdentityProviderId: string

  @description('The service account the bridge acts as to create tasks (terraform output bicep_google_parameter).')
  enqueuerServiceAccount: string

  @description('The service account whose OIDC token tasks carry (terraform output bicep_google_parameter); the callback accepts it.')
  invokerServiceAccount: string
}

@description('Short name every resource name is derived from.')
@minLength(3)
@maxLength(16)
param appName string = 'bridge'

@description('Region of every resource (default: the resource group\'s).')
param location string = resourceGroup().location

@description('Hosting: FlexConsumption (serverless, scales to zero) or ElasticPremium (always warm, VNet): the function app; ContainerApps: the self-hosted runner (src/Bridge.Server) on Azure Container Apps, scaled by KEDA on the intake queue.')
@allowed(['FlexConsumption', 'ElasticPremium', 'ContainerApps'])
param hostingPlan string = 'FlexConsumption'

@description('ContainerApps: the runner\'s image, <registry login server>/bridge-server:<tag>. Empty: registry and environment only (the workflow\'s first pass, before it pushes an image).')
param containerImage string = ''

@description('ContainerApps: fewest replicas. 0 scales to zero when the queue is empty and no HTTP call comes (cheapest; the first callback or event after idle waits for a cold start, and Cloud Tasks retries if it times out); 1 keeps one warm replica (no cold start, always billed).')
@minValue(0)
@maxValue(300)
param minReplicas int = 0

@description('ContainerApps: most replicas KEDA scales out to.')
@minValue(1)
@maxValue(300)
param maxReplicas int = 10

@description('ContainerApps: active intake messages per replica (KEDA azure-servicebus messageCount). Lower: more replicas sooner (faster drain, more cost); higher: fewer, busier replicas.')
@minValue(1)
param messagesPerReplica int = 50

@description('ContainerApps: concurrent HTTP requests (callbacks, events) per replica before another is added.')
@minValue(1)
param concurrentRequestsPerReplica int = 50

@description('ContainerApps: seconds a stopping replica lets in-flight Service Bus messages finish (the host\'s shutdownTimeoutSeconds; the platform waits 15 s longer before killing it). At least the intake lock duration covers a forward with its retries.')
@minValue(10)
@maxValue(585)
param drainSeconds int = 75

@description('ContainerApps: vCPU per replica (memory is twice as many GiB).')
@allowed(['0.25', '0.5', '1', '2'])
param containerCpu string = '0.5'

import { ingressChoice } from 'modules/ingress.bicep'

@description('ContainerApps: Internal (default; no public endpoint, so Cloud Tasks cannot reach the callback) or External with Entra ID authentication of everything but the callback and health, since the runner\'s HTTP intake has none of its own yet.')
param runnerIngress ingressChoice = { kind: 'Internal' }

@description('Most instances the app scales out to (Flex Consumption: 40 to 1000; Premium: the plan\'s elastic limit).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Flex Consumption instance memory.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Elastic Premium size (only with hostingPlan ElasticPremium).')
@allowed(['EP1', 'EP2', 'EP3'])
param premiumSku string = 'EP1'

@description('Service Bus tier; duplicate detection and topics need Standard or Premium.')
@allowed(['Standard', 'Premium'])
param serviceBusSku string = 'Standard'

@description('The queue the bridge consumes.')
param intakeQueueName string = 'bridge-intake'

@description('The queue a topic subscription\'s messages are handed back to (a scheduled copy) while their task can\'t be created yet; always created, and the app always receives from it. Only the bridge sends to it.')
param handBackQueueName string = 'bridge-handback'

@description('Optional topic whose subscription forwards into the intake queue (empty: none).')
param intakeTopicName string = ''

@description('Subscription on intakeTopicName that forwards into the intake queue.')
param intakeSubscriptionName string = 'bridge'

@description('Where task outcomes are published: a queue, a topic, or nowhere (logs only).')
@allowed(['queue', 'topic', 'none'])
param outcomeEntityKind string = 'queue'

@description('Name of the outcome queue or topic.')
param outcomeEntityName string = 'bridge-outcomes'

@description('Deliveries before Service Bus dead-letters a message the bridge could not forward.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int = 10

@description('Peek-lock duration of the intake queue (ISO 8601); covers the forwarder\'s retries of a create call.')
param lockDuration string = 'PT1M'

@description('Window in which a repeated outcome (same MessageId) is dropped (ISO 8601).')
param duplicateDetectionWindow string = 'P1D'

@description('Log Analytics retention.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Days a payload too large to carry inside an outcome stays in the payload store before it is deleted; outcome consumers fetch it within this time.')
@minValue(1)
param payloadRetentionDays int = 30

@description('The Google Cloud side, as created by infra/gcp.')
param google googleCloud

@description('App ID URI of the single-tenant Entra application (v1 tokens) the managed identity asks tokens for, e.g. api://<its application id>: the aud of those tokens and the Google provider\'s allowed audience (infra/gcp azure_token_audience). Created once by an Entra admin: docs/deploy.md, step 1.')
@minLength(8)
param federationAppIdUri string

@description('Routes; the first is the default for Service Bus messages that select none.')
@minLength(1)
param routes route[]

@description('Largest event body forwarded, in bytes (Cloud Tasks allows 1048569 per task).')
@minValue(1)
@maxValue(1048569)
param maxBodyBytes int = 1000000

@description('More app settings, merged last (e.g. OTEL_EXPORTER_OTLP_ENDPOINT).')
param extraAppSettings object = {}

@description('Tags on every resource.')
param tags object = {}

var isContainerApps = hostingPlan == 'ContainerApps'
var suffix = uniqueString(resourceGroup().id, appName)
var names = {
  functionApp: '${appName}-${suffix}'
  identity: '${appName}-identity'
  serviceBus: '${appName}-${suffix}'
  storage: take('${replace(toLower(appName), '-', '')}${suffix}', 24)
  payloads: '${take(replace(toLower(appName), '-', ''), 9)}pl${suffix}'
  registry: take('${replace(toLower(appName), '-', '')}${suffix}', 50)
}
var allTags = union({ application: 'bridge' }, tags)

// The one identity everything authenticates as: Service Bus, storage, Application Insights, and (federated)
// Google Cloud. User-assigned so its principal id, which Google trusts, survives re-creating the app.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    namePrefix: appName
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    publisherPrincipalId: identity.properties.principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    namespaceName: names.serviceBus
    location: location
    tags: allTags
    sku: serviceBusSku
    intakeQueueName: intakeQueueName
    intakeTopicName: intakeTopicName
    intakeSubscriptionName: intakeSubscriptionName
    handBackQueueName: handBackQueueName
    outcomeEntityKind: outcomeEntityKind
    outcomeEntityName: outcomeEntityName
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    duplicateDetectionWindow: duplicateDetectionWindow
    appPrincipalId: identity.properties.principalId
    intakeRole: isContainerApps ? 'Owner' : 'Receiver'
  }
}

var serviceBusNamespace = '${names.serviceBus}.servicebus.windows.net'

// Payloads over Bridge:Outcomes:MaxInlinePayloadBytes are stored here and outcomes carry a reference (both hosting plans).
module payloadStore 'modules/payloadstore.bicep' = {
  name: 'payloadstore'
  params: {
    storageAccountName: names.payloads
    location: location
    tags: allTags
    containerName: 'payloads'
    identityPrincipalId: identity.properties.principalId
    retentionDays: payloadRetentionDays
  }
}

var cloudTasksSettings = {
  Bridge__Project: google.projectId
  Bridge__Location: google.location
  Bridge__DefaultRoute: routes[0].name
  Bridge__MaxBodyBytes: string(maxBodyBytes)
  Bridge__CloudTasks__Credential: 'AzureWorkloadIdentity'
  Bridge__CloudTasks__WorkloadIdentity__Audience: '//iam.googleapis.com/projects/${google.projectNumber}/locations/global/workloadIdentityPools/${google.workloadIdentityPoolId}/providers/${google.workloadIdentityProviderId}'
  Bridge__CloudTasks__WorkloadIdentity__ServiceAccountImpersonationUrl: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${google.enqueuerServiceAccount}:generateAccessToken'
  Bridge__CloudTasks__WorkloadIdentity__ManagedIdentityClientId: identity.properties.clientId
  // What the identity asks for, and what the token then carries (a v1 token's aud is the URI asked for); the
  // provider in infra/gcp allows exactly that audience, from issuer https://sts.windows.net/<tenant>/.
  Bridge__CloudTasks__WorkloadIdentity__AzureTokenScope: '${federationAppIdUri}/.default'
  Bridge__CloudTasks__WorkloadIdentity__AzureTokenAudience: federationAppIdUri
}

var serviceBusSettings = {
  BridgeServiceBus__fullyQualifiedNamespace: serviceBusNamespace
  BridgeServiceBus__credential: 'managedidentity'
  BridgeServiceBus__clientId: identity.properties.clientId
  // Flat: the trigger's binding expression %BridgeServiceBusQueue% is resolved by the scale controller too.
  BridgeServiceBusQueue: intakeQueueName
  // Always set, so the function app's hand-back function (%BridgeServiceBusHandBackQueue%) is never disabled, and a
  // subscription bound directly as the intake is handed back rather than abandoned. Flat like the one above.
  BridgeServiceBusHandBackQueue: handBackQueueName
}

// Google's issuer is also the app's default; written out so that adding Issuers__1 (another issuer) keeps it.
var callbackSettings = {
  Bridge__Callback__AllowedServiceAccounts__0: google.invokerServiceAccount
  Bridge__Callback__Issuers__0__Issuer: 'https://accounts.google.com'
}

var outcomeSettings = outcomeEntityKind == 'none'
  ? {
      Bridge__Outcomes__Sinks__0: 'Log'
      Bridge__Outcomes__ManagedIdentityClientId: identity.properties.clientId // the payload store's sign-in
    }
  : {
      Bridge__Outcomes__Sinks__0: 'Log'
      Bridge__Outcomes__Sinks__1: 'ServiceBus'
      Bridge__Outcomes__ServiceBusNamespace: serviceBusNamespace
      Bridge__Outcomes__ServiceBusEntity: outcomeEntityName
      Bridge__Outcomes__ManagedIdentityClientId: identity.properties.clientId
    }

var payloadStoreSettings = {
  Bridge__Outcomes__PayloadStore__BlobServiceUri: payloadStore.outputs.blobServiceUri
  Bridge__Outcomes__PayloadStore__Container: payloadStore.outputs.containerName
}

// Each route flattened to its Bridge__Routes__<name>__* settings; optional fields only when given, so the
// app's own defaults apply otherwise. Lists and maps become indexed settings: a header name inside a setting name
// (Headers__X-Api-Version) is refused on Linux, whose setting names allow only letters, digits, . and _. A route without targetUrl is completed with the callback URL by the
// function app module (the URL exists only once the app does).
var routeSettings = reduce(
  map(
    routes,
    r =>
      union(
        {
          'Bridge__Routes__${r.name}__Queue': r.queue
          'Bridge__Routes__${r.name}__ServiceAccountEmail': google.invokerServiceAccount
        },
        empty(r.?httpMethod ?? '') ? {} : { 'Bridge__Routes__${r.name}__HttpMethod': r.httpMethod! },
        empty(r.?schedulePolicy ?? '') ? {} : { 'Bridge__Routes__${r.name}__SchedulePolicy': r.schedulePolicy! },
        empty(r.?targetUrl ?? '') ? {} : { 'Bridge__Routes__${r.name}__TargetUrl': r.targetUrl! },
        empty(r.?audience ?? '') ? {} : { 'Bridge__Routes__${r.name}__Audience': r.audience! },
        empty(r.?serviceBusSubject ?? '')
          ? {}
          : {
              'Bridge__Routes__${r.name}__ServiceBusEntity': intakeQueueName
              'Bridge__Routes__${r.name}__ServiceBusSubject': r.serviceBusSubject!
            },
        empty(r.?defaultDelay ?? '') ? {} : { 'Bridge__Routes__${r.name}__DefaultDelay': r.defaultDelay! },
        empty(r.?dispatchDeadline ?? '') ? {} : { 'Bridge__Routes__${r.name}__DispatchDeadline': r.dispatchDeadline! },
        toObject(
          range(0, length(r.?carryProperties ?? [])),
          i => 'Bridge__Routes__${r.name}__CarryProperties__${i}',
          i => r.carryProperties![i]
        ),
        toObject(
          range(0, length(r.?carryHeaders ?? [])),
          i => 'Bridge__Routes__${r.name}__CarryHeaders__${i}',
          i => r.carryHeaders![i]
        ),
        toObject(
          range(0, length(r.?reportingServiceAccounts ?? [])),
          i => 'Bridge__Routes__${r.name}__ReportingServiceAccounts__${i}',
          i => r.reportingServiceAccounts![i]
        ),
        toObject(
          range(0, length(r.?previousServiceAccounts ?? [])),
          i => 'Bridge__Routes__${r.name}__PreviousServiceAccounts__${i}',
          i => r.previousServiceAccounts![i]
        ),
        toObject(
          range(0, length(items(r.?headers ?? {}))),
          i => 'Bridge__Routes__${r.name}__Headers__${i}__Name',
          i => items(r.headers!)[i].key
        ),
        toObject(
          range(0, length(items(r.?headers ?? {}))),
          i => 'Bridge__Routes__${r.name}__Headers__${i}__Value',
          i => items(r.headers!)[i].value
        )
      )
  ),
  {},
  (all, one) => union(all, one)
)

var bridgeSettings = union(cloudTasksSettings, serviceBusSettings, callbackSettings, outcomeSettings, payloadStoreSettings, routeSettings, extraAppSettings)
var callbackRoutes = map(filter(routes, r => empty(r.?targetUrl ?? '')), r => r.name)

module functionApp 'modules/functionapp.bicep' = if (!isContainerApps) {
  name: 'functionapp'
  params: {
    appName: names.functionApp
    location: location
    tags: allTags
    hostingPlan: hostingPlan == 'ElasticPremium' ? 'ElasticPremium' : 'FlexConsumption'
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    premiumSku: premiumSku
    storageAccountName: names.storage
    identityId: identity.id
    identityClientId: identity.properties.clientId
    identityPrincipalId: identity.properties.principalId
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    bridgeSettings: bridgeSettings
    callbackRoutes: callbackRoutes
  }
}

// The same identity, Service Bus, monitoring and settings; no host storage (the runner keeps no state in Azure).
module containerApp 'modules/containerapp.bicep' = if (isContainerApps) {
  name: 'containerapp'
  params: {
    appName: names.functionApp
    location: location
    tags: allTags
    registryName: names.registry
    identityId: identity.id
    identityClientId: identity.properties.clientId
    identityPrincipalId: identity.properties.principalId
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    workspaceId: monitoring.outputs.workspaceId
    image: containerImage
    bridgeSettings: bridgeSettings
    callbackRoutes: callbackRoutes
    serviceBusNamespaceName: names.serviceBus
    intakeQueueName: intakeQueueName
    handBackQueueName: handBackQueueName
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    messagesPerReplica: messagesPerReplica
    concurrentRequestsPerReplica: concurrentRequestsPerReplica
    drainSeconds: drainSeconds
    cpu: containerCpu
    ingress: runnerIngress
  }
}

var baseUrl = 'https://${isContainerApps ? containerApp!.outputs.hostName : functionApp!.outputs.defaultHostName}'

@description('FlexConsumption, ElasticPremium or ContainerApps: which of the two apps the workflow deploys.')
output hostingPlan string = hostingPlan

@description('The function app (empty with ContainerApps).')
output functionAppName string = isContainerApps ? '' : functionApp!.outputs.name

@description('ContainerApps: the container app (empty otherwise).')
output containerAppName string = isContainerApps ? containerApp!.outputs.name : ''

@description('ContainerApps: the registry the workflow pushes the runner\'s image to and the identity pulls from (empty otherwise).')
output containerRegistry string = isContainerApps ? containerApp!.outputs.registryLoginServer : ''

@description('Cloud Tasks calls this; it is the audience of the tasks\' OIDC tokens and what routes without targetUrl target.')
output callbackUrl string = '${baseUrl}/api/tasks/callback'

@description('HTTP intake: POST here with the route name appended (function key required; on Container Apps an Entra ID token of the intake application, or internal only).')
output eventsUrl string = '${baseUrl}/api/events/'

@description('For infra/gcp: the Entra ID tenant whose tokens Google trusts (azure_tenant_id).')
output tenantId string = tenant().tenantId

@description('For infra/gcp: the audience its provider allows (azure_token_audience).')
output federationAppIdUri string = federationAppIdUri

@description('For infra/gcp: the managed identity Google trusts (azure_managed_identity_principal_id).')
output managedIdentityPrincipalId string = identity.properties.principalId

@description('The managed identity\'s client id.')
output managedIdentityClientId string = identity.properties.clientId

@description('Routes whose tasks call the bridge\'s own callback: the smoke test sends each an event and waits for its verified callback.')
output callbackRoutes string[] = callbackRoutes

@description('Service Bus namespace host name.')
output serviceBusNamespace string = serviceBusNamespace

@description('Queue (or topic) the outcomes arrive on; empty when outcomeEntityKind is none.')
output outcomeEntity string = outcomeEntityKind == 'none' ? '' : outcomeEntityName
