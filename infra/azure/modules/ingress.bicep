// Who may reach the runner on Container Apps. Its HTTP intake (POST /api/events/<route>) has no authentication of
// its own yet (issue 13), so a public ingress is only offered together with Entra ID authentication at the ingress.

@description('Internal: reachable only from the Container Apps environment (Service Bus intake and scaling work; Cloud Tasks cannot call the callback, so use routes with a targetUrl).')
type internalIngress = {
  kind: 'Internal'
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
