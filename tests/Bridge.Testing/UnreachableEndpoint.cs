using System.Net;
using System.Net.Sockets;

namespace Bridge.Testing;

/// <summary>
/// A loopback port the test holds bound but never listens on: every connection is refused at once, and nothing else
/// can take the port while the test runs. Unlike a fixed port ("127.0.0.1:1", which something may serve) or a port
/// bound and released (which another process may take in between), "unreachable" here is owned by the test.
/// </summary>
public sealed class UnreachableEndpoint : IDisposable
{
    private readonly Socket _socket;

    public UnreachableEndpoint()
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // no Listen: the kernel answers a SYN with a reset
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
    }

    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>, as an emulator host.</summary>
    public string HostPort => $"127.0.0.1:{Port}";

    /// <summary>An http URL on the port.</summary>
    public Uri Url(string path) => new($"http://127.0.0.1:{Port}{path}");

    public void Dispose() => _socket.Dispose();
}
