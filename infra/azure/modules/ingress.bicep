// Who may reach the runner on Container Apps. A public ingress comes with Entra ID authentication at the ingress and
// in the runner itself (its intake authentication, same application, audiences and callers).

@description('Internal: reachable only from the Container Apps environment (Service Bus intake and scaling work; Cloud Tasks cannot call the callback, so use routes with a targetUrl). With an intake application the runner checks Entra ID tokens; without, it trusts the environment.')
type internalIngress = {
  kind: 'Internal'

  @description('Client id of the Entra application intake callers ask tokens for; with it, the runner authenticates intake itself.')
  @minLength(36)
  intakeClientId: string?

  @description('Accepted token audiences, e.g. [\'api://<intakeClientId>\'].')
  intakeAudiences: string[]?

  @description('Client ids (appid/azp) of the applications or managed identities allowed to send events.')
  intakeCallerClientIds: string[]?
}

@description('External: public, for Cloud Tasks\' calls to the callback; every other path needs an Entra ID token of the intake application from an allowed caller (Easy Auth).')
type externalIngress = {
  kind: 'External'

  @description('Client id of the Entra application intake callers ask tokens for.')
  @minLength(36)
  intakeClientId: string

  @description('Accepted token audiences, e.g. [\'api://<intakeClientId>\'].')
  @minLength(1)
  intakeAudiences: string[]

  @description('Client ids (appid/azp) of the applications or managed identities allowed to send events.')
  @minLength(1)
  intakeCallerClientIds: string[]
}

@export()
@discriminator('kind')
type ingressChoice = internalIngress | externalIngress
