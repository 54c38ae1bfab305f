using System.Security.Cryptography;

namespace Bridge.Core.Internal;

/// <summary>
/// The random stamp of one created task (96 bits from the system's cryptographic generator, in hex). The generator is
/// asked for many stamps at once per thread: one call per stamp cost more than the rest of the forwarding pipeline's
/// own work together (a system call each), while the stamps stay exactly as random.
/// </summary>
internal static class TaskInstanceStamp
{
    private const int StampBytes = 12;
    private const int StampsPerRefill = 128;

    [ThreadStatic]
    private static byte[]? t_buffer;

    [ThreadStatic]
    private static int t_next;

    public static string Next()
    {
        var buffer = t_buffer ??= new byte[StampBytes * StampsPerRefill];
        if (t_next == 0)
        {
            RandomNumberGenerator.Fill(buffer);
        }

        var stamp = buffer.AsSpan(t_next * StampBytes, StampBytes);
        var text = Convert.ToHexStringLower(stamp);
        // Never hand the same bytes out twice.
        stamp.Clear();
        t_next = (t_next + 1) % StampsPerRefill;
        return text;
    }
}
