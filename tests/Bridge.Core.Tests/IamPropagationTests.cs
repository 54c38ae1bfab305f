using Bridge.Core.Forwarding;
using Bridge.Testing;
using Grpc.Core;

namespace Bridge.Core.Tests;

/// <summary>
/// An IAM change still propagating: Cloud Tasks answers PERMISSION_DENIED or UNAUTHENTICATED for a while. Both are
/// transient for the bridge (retried within the route's budget, not dead-lettered at once), and the event goes
/// through once the permission arrives.
/// </summary>
public sealed class IamPropagationTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await CoreHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Theory]
    [InlineData(StatusCode.PermissionDenied)]
    [InlineData(StatusCode.Unauthenticated)]
    public async Task A_denied_or_unauthenticated_create_is_a_transient_not_authorized_and_the_event_goes_through_once_allowed(StatusCode status)
    {
        var fault = _h.Emulator.Emulator.Faults.Fail(status, ["CreateTask"], message: "Permission 'cloudtasks.tasks.create' denied");
        var inbound = _h.Http.Map("orders", new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Idempotency-Key"] = $"iam-{status}" }, "{}"u8.ToArray(), "application/json");

        var error = await Assert.ThrowsAsync<ForwardingException>(() => _h.Forwarder.ForwardAsync(inbound));

        Assert.Equal(ForwardingFailureReason.NotAuthorized, error.Reason);
        Assert.True(error.IsTransient);
        Assert.Contains(_h.Orders.ToString(), error.Message, StringComparison.Ordinal); // names the queue it may not write to
        Assert.Empty(await _h.TasksAsync(_h.Orders));

        Assert.True(_h.Emulator.Emulator.Faults.Remove(fault.Id));
        var result = await _h.Forwarder.ForwardAsync(inbound);

        Assert.Equal(ForwardOutcome.Created, result.Outcome);
        Assert.Single(await _h.TasksAsync(_h.Orders));
    }
}
