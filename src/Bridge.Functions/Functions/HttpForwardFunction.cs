using Bridge.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary>HTTP → Cloud Tasks: <c>POST /api/events/{route}</c>, answered by the hosts' shared endpoint.</summary>
public sealed class HttpForwardFunction(BridgeEndpoints endpoints)
{
    [Function("ForwardHttpEvent")]
    public Task<IResult> RunAsync([HttpTrigger(AuthorizationLevel.Function, "post", Route = BridgeEndpoints.EventsRoute)] HttpRequest request, string route) =>
        endpoints.ForwardEventAsync(request, route);
}
