using Bridge.Core.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Functions;

/// <summary><c>GET /api/health</c>: the worker is up and its configuration validated (it would not start otherwise).</summary>
public sealed class HealthFunction(RouteTable routes)
{
    [Function("Health")]
    public IActionResult Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "health")] HttpRequest request) =>
        new OkObjectResult(new { status = "ok", routes = routes.All.Select(r => r.Name).Order(StringComparer.Ordinal).ToArray() });
}
