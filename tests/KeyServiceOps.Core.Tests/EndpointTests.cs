using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class EndpointTests
    {
        [Theory]
        [InlineData("10.0.0.5", "10.0.0.5", 8888, "10.0.0.5:8888")]
        [InlineData("10.0.0.5:9000", "10.0.0.5", 9000, "10.0.0.5:9000")]
        [InlineData(" 127.0.0.7:8888 ", "127.0.0.7", 8888, "127.0.0.7:8888")]
        [InlineData("[::1]:8888", "0000:0000:0000:0000:0000:0000:0000:0001", 8888, "[0000:0000:0000:0000:0000:0000:0000:0001]:8888")]
        [InlineData("keysvc-01.example.org", "keysvc-01.example.org", 8888, "keysvc-01.example.org:8888")]
        public void Parses_valid_input_to_kong_stored_form(string input, string address, int port, string target)
        {
            var ep = Endpoint.Parse(input, 8888);
            Assert.Equal(address, ep.Address);
            Assert.Equal(port, ep.Port);
            Assert.Equal(target, ep.Target);
        }

        [Theory]
        [InlineData("10.0.0.5:99999")]
        [InlineData("not an ip")]
        [InlineData("")]
        [InlineData("   ")]
        [InlineData("10.0.0.256")]
        [InlineData("10.0.0.5:-1")]
        [InlineData("host;rm -rf /")]
        [InlineData("[::1")]
        public void Rejects_malformed_input_with_InvalidTarget(string input)
        {
            var e = Assert.Throws<OpsException>(() => Endpoint.Parse(input, 8888));
            Assert.Equal("InvalidTarget", e.ErrorId);
            Assert.Equal(OpsErrorCategory.InvalidArgument, e.Category);
        }
    }
}
