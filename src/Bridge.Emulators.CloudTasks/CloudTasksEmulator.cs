using Bridge.Emulators.CloudTasks.Internal;

namespace Bridge.Emulators.CloudTasks;

/// <summary>
/// Handle on a hosted emulator: where its OIDC issuer is, and test helpers to wait until queues are idle and to
/// reset all state.
/// </summary>
public sealed class CloudTasksEmulator
{
    private readonly EmulatorState _state;
    private readonly EmulatorOptions _options;
    private readonly OperationStore? _operations;
    private Uri? _httpAddress;

    internal CloudTasksEmulator(EmulatorState state, EmulatorOptions options, OperationStore? operations = null)
    {
        _state = state;
        _options = options;
        _operations = operations;
    }

    /// <summary>Fault injection: RPCs that fail with a chosen status, and outages (also at <c>/admin/faults</c>).</summary>
    public EmulatorFaults Faults { get; internal init; } = new(TimeProvider.System);

    /// <summary>The <c>iss</c> of minted tokens and the base of the discovery URL.</summary>
    public string Issuer => _options.Issuer is { Length: > 0 } issuer
        ? issuer.TrimEnd('/')
        : DefaultIssuer();

    /// <summary>The issuer from the bound port, made once per address: every OIDC dispatch reads <see cref="Issuer"/>.</summary>
    private string DefaultIssuer()
    {
        var (address, port) = (_httpAddress, _options.HttpPort);
        if (_defaultIssuer is { } made && ReferenceEquals(made.Address, address) && made.Port == port)
        {
            return made.Value;
        }

        var value = $"http://localhost:{(address ?? new Uri($"http://localhost:{port}")).Port}";
        _defaultIssuer = new IssuerFor(address, port, value);
        return value;
    }

    private IssuerFor? _defaultIssuer;

    private sealed record IssuerFor(Uri? Address, int Port, string Value);

    public string DiscoveryUrl => Issuer + OidcIssuer.DiscoveryPath;

    public string JwksUrl => Issuer + OidcIssuer.JwksPath;

    /// <summary>Tells the emulator the HTTP address it was bound to (when its port was 0), for the default issuer.</summary>
    public void UseHttpAddress(Uri address) => _httpAddress = address;

    /// <summary>Waits until the queue (or, with null, every queue) has no tasks left and no dispatch under way.</summary>
    public async Task WaitForIdleAsync(string? queueName = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var changed = _state.Changed;
            if (_state.IsIdle(queueName))
            {
                return;
            }

            try
            {
                await changed.WaitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{queueName ?? "The emulator's queues"} did not become idle within {timeout ?? TimeSpan.FromSeconds(30)}.");
            }
        }
    }

    /// <summary>
    /// Creates the queue with the service's defaults unless it exists (hosts call it before they start); a name
    /// reserved by a recent deletion is taken back.
    /// </summary>
    public void EnsureQueue(string queueName) => _state.EnsureQueue(Bridge.CloudTasks.QueueName.Parse(queueName));

    /// <summary>Every location (<c>projects/P/locations/L</c>) that has a queue now, sorted; for tools that list all queues.</summary>
    public IReadOnlyList<string> QueueLocations() => _state.QueueLocations();

    /// <summary>Deletes every queue, task, tombstone, policy and batch operation.</summary>
    public void Reset()
    {
        _state.Reset();
        _operations?.Clear();
    }
}
