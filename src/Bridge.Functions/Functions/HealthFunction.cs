using Bridge.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary>
/// <c>GET /api/health</c>: the worker is up and its configuration validated (it would not start otherwise); anonymous,
/// so it says no more. <c>GET /api/health/details</c> adds the route names, behind a function key.
/// </summary>
public sealed class HealthFunction(BridgeEndpoints endpoints)
{
    [Function("Health")]
    public IResult Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = BridgeEndpoints.HealthRoute)] HttpRequest request) =>
        endpoints.Health();

    [Function("HealthDetails")]
    public IResult Details([HttpTrigger(AuthorizationLevel.Function, "get", Route = BridgeEndpoints.HealthDetailsRoute)] HttpRequest request) =>
        endpoints.HealthDetails();
}
