namespace Bridge.Server.Internal;

/// <summary>
/// The embedded emulator's REST, admin, OIDC and health endpoints share the API's port; when that port listens beyond
/// loopback (a container's 0.0.0.0) they still answer only connections that arrived on a loopback address.
/// </summary>
internal static class LoopbackOnly
{
    public static void Mark(IEndpointConventionBuilder endpoints) => endpoints.WithMetadata(Marker.Instance);

    /// <summary>After routing: a marked endpoint reached on a non-loopback address answers 404, as if absent.</summary>
    public static void Use(IApplicationBuilder app) => app.Use((context, next) =>
        context.GetEndpoint()?.Metadata.GetMetadata<Marker>() is null || (context.Connection.LocalIpAddress is { } local && IntakeSettings.IsLoopback(local))
            ? next(context)
            : Results.Problem(
                "The embedded emulator's endpoints answer only on loopback (from this machine or container).",
                statusCode: StatusCodes.Status404NotFound,
                title: "LoopbackOnly",
                type: "urn:bridge:server:LoopbackOnly").ExecuteAsync(context));

    private sealed class Marker
    {
        public static readonly Marker Instance = new();
    }
}
