using Bridge.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary><c>GET /api/health</c>: the worker is up and its configuration validated (it would not start otherwise).</summary>
public sealed class HealthFunction(BridgeEndpoints endpoints)
{
    [Function("Health")]
    public IResult Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = BridgeEndpoints.HealthRoute)] HttpRequest request) =>
        endpoints.Health();
}
