// Example: copy, set your repository and the app's resource group, deploy once (see main.bicep).
using 'main.bicep'

param repository = 'my-org/bridge'
param environmentName = 'production'
param appResourceGroupName = 'rg-bridge'
