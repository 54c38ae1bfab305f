using System.Text.RegularExpressions;
using Bridge.CloudTasks.LongRunning;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// google.longrunning.Operations over the batches' operations, named <c>projects/*/locations/*/operations/*</c>.
/// Operations are done when their batch answers, so CancelOperation has nothing left to stop and changes nothing.
/// </summary>
internal sealed partial class OperationsService(OperationStore operations) : Operations.OperationsBase
{
    /// <summary>WaitOperation waits at most this long, whatever the request asks.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    public override Task<Operation> GetOperation(GetOperationRequest request, ServerCallContext context) =>
        Task.FromResult(operations.Get(ParseName(request.Name, "name")));

    public override Task<ListOperationsResponse> ListOperations(ListOperationsRequest request, ServerCallContext context) =>
        Task.FromResult(List(operations, request));

    public override Task<Empty> DeleteOperation(DeleteOperationRequest request, ServerCallContext context)
    {
        operations.Delete(ParseName(request.Name, "name"));
        return Task.FromResult(new Empty());
    }

    public override Task<Empty> CancelOperation(CancelOperationRequest request, ServerCallContext context)
    {
        operations.Get(ParseName(request.Name, "name")); // NOT_FOUND for an unknown one
        return Task.FromResult(new Empty());
    }

    public override async Task<Operation> WaitOperation(WaitOperationRequest request, ServerCallContext context)
    {
        var name = ParseName(request.Name, "name");
        var timeout = MaxWait;
        if (request.Timeout is { } asked)
        {
            var wanted = asked.ToTimeSpan();
            if (wanted < TimeSpan.Zero)
            {
                throw Errors.InvalidArgument("timeout", $"timeout must not be negative; got {wanted}.");
            }

            timeout = wanted < MaxWait ? wanted : MaxWait;
        }

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        bounded.CancelAfter(timeout);
        return await operations.WaitAsync(name, bounded.Token).ConfigureAwait(false);
    }

    /// <summary>ListOperations: <c>name</c> is the location (<c>projects/p/locations/l</c>); only an empty filter is understood.</summary>
    public static ListOperationsResponse List(OperationStore operations, ListOperationsRequest request)
    {
        var location = QueueRules.ParseLocationName(request.Name, "name").ToString();
        if (!string.IsNullOrWhiteSpace(request.Filter))
        {
            throw Errors.InvalidArgument("filter", $"filter '{request.Filter}' is not supported by the emulator; leave it empty.");
        }

        var pageSize = Paging.PageSize(request.PageSize, Paging.MaxTaskPageSize);
        var page = operations.List(location + "/operations/", Paging.DecodeToken(request.PageToken), pageSize + 1);
        var response = new ListOperationsResponse { Operations = { page.Take(pageSize) } };
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.EncodeToken(page[pageSize - 1].Name);
        }

        return response;
    }

    public static string ParseName(string name, string field) =>
        OperationName().IsMatch(name ?? string.Empty)
            ? name!
            : throw Errors.InvalidArgument(field, $"{field} '{name}' is not an operation name: projects/<project>/locations/<location>/operations/<id>.");

    [GeneratedRegex("^projects/[^/]+/locations/[^/]+/operations/[^/]+$", RegexOptions.CultureInvariant)]
    private static partial Regex OperationName();
}
