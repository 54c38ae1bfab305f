// The Service Bus side of the bridge: the intake queue the function app consumes (optionally fed by a
// topic subscription that auto-forwards into it), the hand-back queue, and the entity outcomes are published to, with
// duplicate detection so a redelivered callback's outcome (same MessageId) is dropped.
import { builtInRoles } from 'roles.bicep'

param namespaceName string
param location string
param tags object
@allowed(['Standard', 'Premium'])
param sku string
param intakeQueueName string
param intakeTopicName string
param intakeSubscriptionName string
@description('The queue a topic subscription\'s messages are handed back to while their task can\'t be created yet; the app receives from it too.')
param handBackQueueName string
@allowed(['queue', 'topic', 'none'])
param outcomeEntityKind string
param outcomeEntityName string
param maxDeliveryCount int
param lockDuration string
param duplicateDetectionWindow string
param appPrincipalId string
@description('The role on the intake queue: Receiver for the function app; Owner where KEDA\'s Service Bus scaler reads the queue\'s length with this identity (it needs the Manage claim).')
@allowed(['Receiver', 'Owner'])
param intakeRole string = 'Receiver'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    // Keyless only: SAS keys are refused, every client authenticates with Entra ID.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource intakeQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: intakeQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresSession: false
  }
}

// Only the bridge sends here: a copy of a topic subscription's message (a copy sent to the topic would reach every
// subscription), scheduled for later, naming its subscription. Copies have deterministic MessageIds, so duplicate
// detection drops a second copy sent by an instance that died before completing the original.
resource handBackQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: handBackQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
  }
}

resource intakeTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = if (!empty(intakeTopicName)) {
  parent: namespace
  name: empty(intakeTopicName) ? 'unused' : intakeTopicName
  properties: {}
}

resource intakeSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = if (!empty(intakeTopicName)) {
  parent: intakeTopic
  name: intakeSubscriptionName
  properties: {
    forwardTo: intakeQueue.name
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
  }
}

resource outcomeQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = if (outcomeEntityKind == 'queue') {
  parent: namespace
  name: outcomeEntityName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    maxDeliveryCount: maxDeliveryCount
  }
}

resource outcomeTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = if (outcomeEntityKind == 'topic') {
  parent: namespace
  name: outcomeEntityName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
  }
}

// Least privilege: receive and send (hand-backs) on the intake and hand-back queues only (Owner of those two queues
// where KEDA scales on them), send on the outcome entity only.
var intakeRoleId = intakeRole == 'Owner' ? builtInRoles.serviceBusDataOwner : builtInRoles.serviceBusDataReceiver

resource intakeReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(intakeQueue.id, appPrincipalId, intakeRoleId)
  scope: intakeQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', intakeRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Send on the intake queue too: a message whose task can't be created yet is handed back as a scheduled copy
// to this queue (Receiver alone can't send, and every hand-back would fail). Owner includes it.
resource intakeSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (intakeRole == 'Receiver') {
  name: guid(intakeQueue.id, appPrincipalId, builtInRoles.serviceBusDataSender)
  scope: intakeQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.serviceBusDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The hand-back queue: received from like the intake queue, and sent to (every hand-back of a subscription's message).
resource handBackReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(handBackQueue.id, appPrincipalId, intakeRoleId)
  scope: handBackQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', intakeRoleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource handBackSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (intakeRole == 'Receiver') {
  name: guid(handBackQueue.id, appPrincipalId, builtInRoles.serviceBusDataSender)
  scope: handBackQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.serviceBusDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource outcomeQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (outcomeEntityKind == 'queue') {
  name: guid(outcomeQueue.id, appPrincipalId, builtInRoles.serviceBusDataSender)
  scope: outcomeQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.serviceBusDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource outcomeTopicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (outcomeEntityKind == 'topic') {
  name: guid(outcomeTopic.id, appPrincipalId, builtInRoles.serviceBusDataSender)
  scope: outcomeTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.serviceBusDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
output intakeQueueName string = intakeQueue.name
output handBackQueueName string = handBackQueue.name
