using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Bridge.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Functions;

/// <summary>HTTP → Cloud Tasks: <c>POST /api/events/{route}</c>, answered by the hosts' shared endpoint.</summary>
public sealed class HttpForwardFunction(HttpIntake intake, IEventForwarder forwarder, IOptions<BridgeOptions> options)
{
    [Function("ForwardHttpEvent")]
    public Task<IResult> RunAsync([HttpTrigger(AuthorizationLevel.Function, "post", Route = BridgeEndpoints.EventsRoute)] HttpRequest request, string route) =>
        BridgeEndpoints.ForwardEventAsync(request, route, intake, forwarder, options);
}
