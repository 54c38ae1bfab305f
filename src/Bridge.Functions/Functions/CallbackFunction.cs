using Bridge.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary>
/// <c>POST /api/tasks/callback</c>: Cloud Tasks dispatches and outcome reports. Anonymous at the function level:
/// the caller's Google-signed OIDC token is verified by the receiver before anything else.
/// </summary>
public sealed class CallbackFunction(BridgeEndpoints endpoints)
{
    [Function("TaskCallback")]
    public Task<IResult> RunAsync([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = BridgeEndpoints.CallbackRoute)] HttpRequest request) =>
        endpoints.ReceiveCallbackAsync(request);
}
