using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// The Operations service's REST routes under <c>/v2beta3</c>. Cloud Tasks binds them in its service config
/// (<c>GET /v2beta3/{name=projects/*/locations/*/operations/*}</c>), not in the proto, so transcoding does not see
/// them: they are mapped here by hand. List, delete and cancel follow the same shape as other Google APIs do.
/// </summary>
internal static class OperationsRest
{
    /// <summary>The types an operation's metadata, response and errors carry, for writing its Any fields as JSON.</summary>
    public static readonly TypeRegistry Types = TypeRegistry.FromMessages(
        BatchCreateTasksMetadata.Descriptor, BatchCreateTasksResponse.Descriptor, BatchDeleteTasksMetadata.Descriptor,
        Google.Protobuf.WellKnownTypes.Empty.Descriptor, Google.Rpc.BadRequest.Descriptor, Google.Rpc.RetryInfo.Descriptor, Google.Rpc.ErrorInfo.Descriptor);

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithTypeRegistry(Types));

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        const string Location = "/v2beta3/projects/{project}/locations/{location}";
        endpoints.MapGet(Location + "/operations/{operation}", (HttpContext http, string project, string location, string operation) =>
            Answer(http, () => Store(http).Get(OperationsService.ParseName(Name(project, location, operation), "name"))));
        endpoints.MapGet(Location + "/operations", (HttpContext http, string project, string location, int? pageSize, string? pageToken, string? filter) =>
            Answer(http, () => OperationsService.List(Store(http), new ListOperationsRequest
            {
                Name = $"projects/{project}/locations/{location}",
                PageSize = pageSize ?? 0,
                PageToken = pageToken ?? string.Empty,
                Filter = filter ?? string.Empty,
            })));
        endpoints.MapDelete(Location + "/operations/{operation}", (HttpContext http, string project, string location, string operation) =>
            Answer(http, () =>
            {
                Store(http).Delete(OperationsService.ParseName(Name(project, location, operation), "name"));
                return new Google.Protobuf.WellKnownTypes.Empty();
            }));
        endpoints.MapPost(Location + "/operations/{operation}:cancel", (HttpContext http, string project, string location, string operation) =>
            Answer(http, () =>
            {
                Store(http).Get(OperationsService.ParseName(Name(project, location, operation), "name"));
                return new Google.Protobuf.WellKnownTypes.Empty();
            }));
    }

    private static OperationStore Store(HttpContext http) => http.RequestServices.GetRequiredService<OperationStore>();

    private static string Name(string project, string location, string operation) => $"projects/{project}/locations/{location}/operations/{operation}";

    /// <summary>The message as JSON, or the error in the envelope Google's REST APIs answer with.</summary>
    private static IResult Answer(HttpContext http, Func<IMessage> call)
    {
        try
        {
            return Results.Text(Formatter.Format(call()), "application/json; charset=utf-8");
        }
        catch (RpcException ex)
        {
            var status = ex.GetRpcStatus() ?? new Google.Rpc.Status { Code = (int)ex.StatusCode, Message = ex.Status.Detail };
            var json = Formatter.Format(status);
            return GoogleErrorEnvelope.Rewrite(System.Text.Encoding.UTF8.GetBytes(json)) is { } envelope
                ? Results.Text(System.Text.Encoding.UTF8.GetString(envelope.Body), "application/json; charset=utf-8", statusCode: envelope.HttpStatus)
                : Results.Text(json, "application/json; charset=utf-8", statusCode: GoogleErrorEnvelope.HttpStatusFor(ex.StatusCode));
        }
    }
}
