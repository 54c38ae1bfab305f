// The deployer's and the planner's rights, on the app's resource group only.
import { builtInRoles } from '../modules/roles.bicep'

param deployerPrincipalId string
param plannerPrincipalId string

@description('Role definition ids the deployer may assign (to service principals only).')
param assignableRoles string[]

var roleList = join(assignableRoles, ', ')

// Role Based Access Control Administrator, constrained: it may create and delete assignments of the listed roles to
// service principals, nothing else (no Owner, no User Access Administrator, no assignments to users or groups).
var assignmentCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleList}}))'

resource deployerContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, deployerPrincipalId, builtInRoles.contributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.contributor)
    principalId: deployerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deployerAssignsAppRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, deployerPrincipalId, builtInRoles.roleBasedAccessControlAdministrator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.roleBasedAccessControlAdministrator)
    principalId: deployerPrincipalId
    principalType: 'ServicePrincipal'
    condition: assignmentCondition
    conditionVersion: '2.0'
  }
}

// Reader plus the two deployment actions what-if needs; no write of any kind.
resource whatIfRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'bridge-what-if')
  properties: {
    roleName: 'Bridge deployment what-if (${resourceGroup().name})'
    description: 'Validate and preview deployments of Bridge; no writes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/deployments/validate/action'
          'Microsoft.Resources/deployments/whatIf/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource plannerReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, plannerPrincipalId, builtInRoles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.reader)
    principalId: plannerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource plannerWhatIf 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, plannerPrincipalId, whatIfRole.name)
  properties: {
    // Custom roles are assigned by their subscription-level id.
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', whatIfRole.name)
    principalId: plannerPrincipalId
    principalType: 'ServicePrincipal'
  }
}
