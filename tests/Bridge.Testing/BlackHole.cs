using System.Net;
using System.Net.Sockets;

namespace Bridge.Testing;

/// <summary>
/// A TCP listener that accepts connections and never answers: what a hung issuer or a dropped route looks like to a
/// client. <see cref="Divert"/> makes an <see cref="HttpClient"/> connect here instead of where its URLs point, while
/// <see cref="Enabled"/> is set.
/// </summary>
public sealed class BlackHole : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly List<Socket> _accepted = [];
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    public BlackHole()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _ = AcceptAsync();
    }

    public IPEndPoint EndPoint { get; }

    public bool Enabled { get; set; }

    /// <summary>Connections accepted (and left unanswered) so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>A client whose connections go to their URL's host, or here while <see cref="Enabled"/>.</summary>
    public HttpClient Divert() => new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.Zero, // a new connection per request, so switching takes effect at once
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                if (Enabled)
                {
                    await socket.ConnectAsync(EndPoint, cancellationToken);
                }
                else
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                }

                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptAsync(_stop.Token);
                lock (_accepted)
                {
                    _accepted.Add(socket);
                }

                Interlocked.Increment(ref _connections);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // stopped
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        lock (_accepted)
        {
            foreach (var socket in _accepted)
            {
                socket.Dispose();
            }
        }

        _stop.Dispose();
    }
}
