// The send page's conveniences: show the part of the form for the chosen kind of message, count
// the text's bytes as carriers do (EUC-KR: Hangul 2 bytes, ASCII 1) and say SMS or LMS, show the
// chosen AlimTalk template. The server decides everything again at the check step.
(function () {
  "use strict";
  var form = document.getElementById("send-form");
  if (!form) { return; }
  var body = document.getElementById("body");
  var count = document.getElementById("byte-count");
  var channelLabel = document.getElementById("byte-channel");
  var channel = document.getElementById("channel");
  var ad = document.getElementById("advertisement");
  var optOut = document.getElementById("opt_out_number");
  var label = document.getElementById("byte-counter").dataset.label;
  var template = document.getElementById("template_code");
  var templateContent = document.getElementById("template-content");
  var smsMax = parseInt(body.dataset.sms, 10);
  var lmsMax = parseInt(body.dataset.lms, 10);

  function bytes(text) {
    var n = 0;
    for (var i = 0; i < text.length; i++) { n += text.charCodeAt(i) < 128 ? 1 : 2; }
    return n;
  }

  // What the server will send: the advertising label and opt-out line added where missing.
  function outgoing() {
    var text = body.value;
    if (ad.checked) {
      text = text.trim();
      if (text.indexOf(label) !== 0) { text = label + text; }
      if (!/무료\s*(수신\s*)?거부/.test(text) && optOut.value.trim()) {
        text += "\n무료수신거부 " + optOut.value.trim();
      }
    }
    return text.replace(/#\{[^}]*\}/g, "");
  }

  function update() {
    var n = bytes(outgoing());
    count.textContent = n.toLocaleString("ko-KR");
    var chosen = channel.value;
    var name;
    if (chosen === "sms") {
      name = n <= smsMax ? "SMS" : "SMS 초과 (90바이트)";
    } else if (n > lmsMax) {
      name = "LMS 초과 (2,000바이트)";
    } else {
      name = chosen === "lms" || n > smsMax ? "LMS" : "SMS";
    }
    channelLabel.textContent = name;
    channelLabel.className = /초과/.test(name) ? "over" : "";
  }

  function showMode() {
    var kakao = form.querySelector("input[name=mode]:checked").value === "kakao";
    document.getElementById("text-part").hidden = kakao;
    document.getElementById("kakao-part").hidden = !kakao;
  }

  function showTemplate() {
    var option = template.options[template.selectedIndex];
    templateContent.textContent = option && option.dataset.content ? option.dataset.content : "";
  }

  [body, channel, ad, optOut].forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  form.querySelectorAll("input[name=mode]").forEach(function (el) { el.addEventListener("change", showMode); });
  template.addEventListener("change", showTemplate);
  form.addEventListener("submit", function () { document.getElementById("next").disabled = true; });
  update();
  showMode();
  showTemplate();
})();
